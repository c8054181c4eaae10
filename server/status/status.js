// greenline's status page: polls /status.json once per sample period, keeps the samples the server
// keeps (ten minutes by default), and draws them with Chart.js. The first poll gets the whole ring,
// later ones only what is new (?since=SEQ). Rates are differences of the cumulative counters
// between consecutive samples. User input (room names) only ever goes into textContent.
'use strict';

(function () {
  const SERVICES = ['echo', 'chat', 'http'];
  // Running-class waits in greens and blues, blocking ones in reds, oranges and purples; the
  // server says which is which.
  const RUN_COLOURS = ['#2f9e6f', '#74c69d', '#1c7ed6', '#66d9e8', '#b2f2bb'];
  const BLOCK_COLOURS = ['#d9480f', '#f08c00', '#c2255c', '#862e9c', '#e8590c', '#fa5252',
                         '#ae3ec9', '#ffa94d', '#a61e4d', '#f76707', '#e64980', '#9c36b5'];
  const EXECUTING = 'executing or runnable';

  let samples = [];     // oldest first
  let lastSeq = 0;
  let info = null;      // the last response's fixed facts
  let charts = null;
  let lastOk = 0;

  const $ = (id) => document.getElementById(id);
  const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
  const fmtRate = (r) => (r >= 100 ? fmtInt(r) : r >= 10 ? r.toFixed(0) : r.toFixed(1));
  function fmtBytes(b) {
    if (b < 0 || b === undefined) return '?';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; ++i; }
    return (i === 0 ? b.toFixed(0) : b.toFixed(1)) + ' ' + units[i];
  }
  function setText(id, text) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }

  function makeChart(id, stacked, yTitle) {
    return new Chart($(id), {
      type: 'line',
      data: { datasets: [] },
      options: {
        animation: false,
        maintainAspectRatio: false,
        normalized: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        elements: { point: { radius: 0 }, line: { borderWidth: 1.5, tension: 0 } },
        scales: {
          x: { type: 'linear', title: { display: true, text: 'seconds ago' },
               ticks: { callback: (v) => (v === 0 ? 'now' : String(-v)) } },
          y: { stacked: stacked, beginAtZero: true, title: { display: true, text: yTitle },
               ticks: { precision: 0 } },
        },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
      },
    });
  }

  // Replaces a chart's datasets, keeping the objects of those whose label stays (no flicker).
  function setDatasets(chart, sets, xMin) {
    const old = new Map(chart.data.datasets.map((d) => [d.label, d]));
    chart.data.datasets = sets.map((s) => Object.assign(old.get(s.label) || {}, s));
    chart.options.scales.x.min = xMin;
    chart.options.scales.x.max = 0;
    chart.update('none');
  }

  function rate(a, b, pick) {
    const dt = (b.t - a.t) / 1000;
    return dt > 0 ? Math.max(0, (pick(b) - pick(a)) / dt) : 0;
  }

  function draw() {
    if (samples.length === 0) return;
    const last = samples[samples.length - 1];
    const xOf = (s) => (s.t - last.t) / 1000;
    // From the oldest sample kept (at least the last minute), so a young server's first seconds
    // are not a sliver at the right.
    const span = Math.max(60, Math.ceil((last.t - samples[0].t) / 1000));
    const xMin = -Math.min(span, (info.keep * info.period_ms) / 1000);

    // Goroutines, stacked: running-class first (executing or runnable, then parked running-class
    // reasons), blocking reasons on top. A reason shows once it was non-zero in the window.
    const reasons = info.reasons.filter((r) => samples.some((s) => s.goroutines.waiting[r.name]));
    const runningReasons = reasons.filter((r) => !r.blocking);
    const blockingReasons = reasons.filter((r) => r.blocking);
    const parkedRunning = (s) => info.reasons.filter((r) => !r.blocking)
        .reduce((n, r) => n + (s.goroutines.waiting[r.name] || 0), 0);
    const gsets = [];
    const series = [{ label: EXECUTING, value: (s) => Math.max(0, s.goroutines.running - parkedRunning(s)),
                      colour: RUN_COLOURS[0] }];
    runningReasons.forEach((r, i) => series.push({ label: r.name, value: (s) => s.goroutines.waiting[r.name] || 0,
                                                   colour: RUN_COLOURS[(i + 1) % RUN_COLOURS.length] }));
    blockingReasons.forEach((r, i) => series.push({ label: r.name + ' (blocking)',
                                                    value: (s) => s.goroutines.waiting[r.name] || 0,
                                                    colour: BLOCK_COLOURS[i % BLOCK_COLOURS.length] }));
    series.forEach((ser, i) => gsets.push({
      label: ser.label, data: samples.map((s) => ({ x: xOf(s), y: ser.value(s) })),
      borderColor: ser.colour, backgroundColor: ser.colour + 'b0', fill: i === 0 ? 'origin' : '-1',
    }));
    setDatasets(charts.goroutines, gsets, xMin);

    const serviceColours = { echo: '#1c7ed6', chat: '#2f9e6f', http: '#868e96' };
    setDatasets(charts.connections, SERVICES.map((name) => ({
      label: name, data: samples.map((s) => ({ x: xOf(s), y: s.connections[name] || 0 })),
      borderColor: serviceColours[name], backgroundColor: serviceColours[name], fill: false,
    })), xMin);

    const lineSeries = [
      { label: 'echo lines', pick: (s) => s.lines_received.echo, colour: '#1c7ed6' },
      { label: 'chat lines posted', pick: (s) => s.lines_received.chat, colour: '#2f9e6f' },
      { label: 'chat deliveries', pick: (s) => s.lines_sent.chat, colour: '#f08c00' },
    ];
    setDatasets(charts.lines, lineSeries.map((ls) => ({
      label: ls.label,
      data: samples.slice(1).map((s, i) => ({ x: xOf(s), y: rate(samples[i], s, ls.pick) })),
      borderColor: ls.colour, backgroundColor: ls.colour, fill: false,
    })), xMin);

    // The tiles: the last sample, and the rates over its last period.
    const prev = samples.length > 1 ? samples[samples.length - 2] : last;
    setText('g-live', fmtInt(last.goroutines.live));
    setText('g-running', fmtInt(last.goroutines.running));
    setText('g-blocking', fmtInt(last.goroutines.blocking));
    for (const name of SERVICES) setText('conn-' + name, fmtInt(last.connections[name] || 0));
    setText('rate-echo', fmtRate(rate(prev, last, (s) => s.lines_received.echo)));
    setText('rate-chat-in', fmtRate(rate(prev, last, (s) => s.lines_received.chat)));
    setText('rate-chat-out', fmtRate(rate(prev, last, (s) => s.lines_sent.chat)));
    setText('panics', fmtInt(last.panics_recovered));
    setText('too-slow', fmtInt(last.disconnects_too_slow));
    setText('out-queued', fmtBytes(last.chat_output_bytes));
    setText('rss', fmtBytes(last.resident_bytes));
    const cpu = last.cpu_seconds !== undefined && prev.cpu_seconds !== undefined
        ? rate(prev, last, (s) => s.cpu_seconds) * 100 : NaN;
    setText('cpu', isNaN(cpu) ? '?' : cpu.toFixed(0) + '%');
    document.body.dataset.seq = String(last.seq);
    document.body.dataset.samples = String(samples.length);
  }

  function drawRooms(rooms) {
    setText('rooms-total', fmtInt(rooms.total));
    const body = $('rooms');
    const rows = [];
    for (const r of rooms.biggest) {
      const tr = document.createElement('tr');
      const name = document.createElement('td');
      name.className = 'name';
      name.textContent = r.name;  // user input: text, never markup
      const members = document.createElement('td');
      members.className = 'members';
      members.textContent = fmtInt(r.members);
      tr.append(name, members);
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    setText('rooms-note', rooms.total > rooms.biggest.length
        ? 'The ' + rooms.biggest.length + ' biggest of ' + fmtInt(rooms.total) + ' rooms.'
        : rooms.total === 0 ? 'No rooms: chat is off.' : '');
  }

  async function poll() {
    try {
      const resp = await fetch('/status.json?since=' + lastSeq, { cache: 'no-store' });
      if (!resp.ok) throw new Error('HTTP ' + resp.status);
      const j = await resp.json();
      // A restarted server has another boot time and counts from 1 again: start over.
      if (info && j.boot !== info.boot) { samples = []; lastSeq = 0; info = null; return; }
      info = j;
      setText('version', j.version);
      setText('poller', j.poller);
      setText('workers', String(j.workers));
      setText('keep', String(Math.round((j.keep * j.period_ms) / 60000)));
      samples.push(...j.samples);
      if (samples.length > j.keep) samples.splice(0, samples.length - j.keep);
      if (samples.length > 0) lastSeq = samples[samples.length - 1].seq;
      if (!charts) {
        charts = {
          goroutines: makeChart('chart-goroutines', true, 'goroutines'),
          connections: makeChart('chart-connections', false, 'connections'),
          lines: makeChart('chart-lines', false, 'per second'),
        };
      }
      draw();
      drawRooms(j.rooms);
      lastOk = Date.now();
      setText('live', 'live');
      $('live').className = 'ok';
    } catch (e) {
      setText('live', 'no answer from the server (' + e.message + '); retrying');
      $('live').className = 'stale';
    }
  }

  async function loop() {
    for (;;) {
      await poll();
      const period = info ? info.period_ms : 1000;
      await new Promise((resolve) => setTimeout(resolve, period));
    }
  }
  loop();
})();
