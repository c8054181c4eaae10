module greenline/runtime_bench

go 1.23
