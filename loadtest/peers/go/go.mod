module greenline/loadtest/peers/go

go 1.23
