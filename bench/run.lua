-- bench/run.lua: nnlua against PyTorch on the reference models, in one run.
-- Started by bench/run.sh (which builds first):
--   build/nnlua bench/run.lua [--models a,b,c] [--threads N] [--quick]
--       [--warm W] [--windows K] [--steps S] [--rounds R] [--no-torch]
--       [--startup-runs N]
--
-- For each model it runs build/nnlua bench/bench.lua and then, when
-- /usr/bin/python3 can import torch and ../shared/bench/torch_reference.py
-- exists, PyTorch's script, each in its own process and interleaved so that
-- machine noise falls on both alike; the same warm-up/window/step counts
-- are passed to both.  The whole sequence runs R times (default 3, 1 with
-- --quick) and each side keeps, per phase, its best round's median: other
-- processes can only slow a run down, so the best round is the one least
-- disturbed, on both sides alike.  Every round's figures are printed under
-- the table.  Peak RSS is the process's maximum resident set
-- (/usr/bin/time -f %M when installed, else a python3 launcher's
-- getrusage(RUSAGE_CHILDREN), else nnlua's own VmHWM).  Then the 1- vs
-- 2-thread speed-up on vgg16-32 training and the start-up time of a script
-- that builds fmnist-cnn.  Prints one Markdown table, also written to
-- build/bench.md.
local nn = require "nn"

local MODELS = {"fmnist-cnn", "vgg16-32", "vgg16-64"}
-- torch_reference.py's defaults (warm-up steps, windows, steps per window).
local DEFAULTS = {["fmnist-cnn"] = {10, 7, 20}, ["vgg16-32"] = {3, 6, 6}, ["vgg16-64"] = {2, 5, 4}}
local QUICK = {["fmnist-cnn"] = {2, 2, 5}, ["vgg16-32"] = {1, 2, 2}, ["vgg16-64"] = {1, 2, 1}}
-- Issue 4's targets: minimum speed ratios (nnlua / PyTorch).
local TRAIN_TARGET = {["fmnist-cnn"] = 2.0, ["vgg16-32"] = 1.5, ["vgg16-64"] = 1.5}
local INFER_TARGET, RSS_TARGET, SCALING_TARGET, STARTUP_TARGET_MS = 1.5, 0.5, 1.8, 50
local PYTHON = "/usr/bin/python3"

local function usage(msg)
  if msg then io.stderr:write("run.lua: ", msg, "\n") end
  io.stderr:write("usage: nnlua bench/run.lua [--models a,b] [--threads N] [--quick] [--warm W] "
                  .. "[--windows K] [--steps S] [--rounds R] [--no-torch] [--startup-runs N]\n")
  os.exit(2)
end

local function parse(argv)
  local o = {models = MODELS, threads = 2, startup_runs = 10}
  local i = 1
  local function value(name)
    i = i + 1
    if argv[i] == nil then usage("missing value after " .. name) end
    return argv[i]
  end
  local function int(name)
    local v = math.tointeger(tonumber(value(name)))
    if not v or v < 1 then usage(name .. " expects a positive integer") end
    return v
  end
  while argv[i] do
    local a = argv[i]
    if a == "--models" then
      o.models = {}
      for m in value(a):gmatch("[^,]+") do
        if not DEFAULTS[m] then usage("unknown model " .. m) end
        o.models[#o.models + 1] = m
      end
    elseif a == "--threads" then o.threads = int(a)
    elseif a == "--warm" then o.warm = int(a)
    elseif a == "--windows" then o.windows = int(a)
    elseif a == "--steps" then o.steps = int(a)
    elseif a == "--quick" then o.quick = true
    elseif a == "--no-torch" then o.no_torch = true
    elseif a == "--startup-runs" then o.startup_runs = int(a)
    elseif a == "--rounds" then o.rounds = int(a)
    elseif a == "-h" or a == "--help" then usage()
    else usage("unknown option " .. a) end
    i = i + 1
  end
  o.rounds = o.rounds or (o.quick and 1 or 3)
  return o
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local o = parse(arg)
local interp = arg[-1] or "build/nnlua"
local root = (arg[0]:match("^(.*)/bench/[^/]*$")) or "."
local bench_lua = root .. "/bench/bench.lua"
local torch_script = root .. "/../shared/bench/torch_reference.py"
local rss_file = os.tmpname()

-- How peak RSS is measured: wrap(cmd) returns the command to run and a
-- function reading the peak in KiB afterwards (nil if unknown).
local have_time = exists("/usr/bin/time")
local have_python = exists(PYTHON)
local rss_method
local function wrap(cmd)
  if have_time then
    rss_method = "/usr/bin/time -f %M"
    return "/usr/bin/time -o " .. quote(rss_file) .. " -f %M " .. cmd
  elseif have_python then
    rss_method = "getrusage(RUSAGE_CHILDREN) of a python3 launcher"
    local launcher = "import resource,subprocess,sys\n"
      .. "r = subprocess.call(sys.argv[2:])\n"
      .. "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
      .. "sys.exit(r)\n"
    return PYTHON .. " -c " .. quote(launcher) .. " " .. quote(rss_file) .. " " .. cmd
  end
  rss_method = "VmHWM (nnlua only)"
  return cmd
end
local function read_rss()
  local f = io.open(rss_file, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  os.remove(rss_file)
  -- /usr/bin/time may print "Command exited with non-zero status" first.
  local last
  for n in s:gmatch("(%d+)%s*$") do last = n end
  return tonumber(last)
end

-- Runs a command, echoing its output indented, and returns
-- {train = {med, min, max}, infer = {...}, rss_kb = n, ok = bool, lines = {...}}.
local function run(label, cmd, rss_wrap)
  print(string.format("== %s", label))
  io.stdout:flush()
  os.remove(rss_file)
  local full = (rss_wrap and wrap(cmd) or cmd) .. " 2>&1"
  local p = io.popen(full, "r")
  local r = {lines = {}}
  for line in p:lines() do
    if not line:match("^RESULT ") then
      print("   " .. line)
      io.stdout:flush()
    end
    r.lines[#r.lines + 1] = line
    local phase, med, lo, hi = line:match("^%S+ (%a+): img/s median ([%d.]+) min ([%d.]+) max ([%d.]+)")
    if phase then r[phase] = {tonumber(med), tonumber(lo), tonumber(hi)} end
    local kb = line:match("^RESULT %S+ rss_kb (%d+)")
    if kb then r.vmhwm_kb = tonumber(kb) end
    kb = line:match("^RESULT %S+ rss_train_kb (%d+)")
    if kb then r.train_kb = tonumber(kb) end
  end
  r.ok = p:close() == true
  if not r.ok then print("   (exited with an error)") end
  if rss_wrap then r.rss_kb = read_rss() end
  r.rss_kb = r.rss_kb or r.vmhwm_kb
  return r
end

local function counts(model)
  local d = (o.quick and QUICK or DEFAULTS)[model]
  return o.warm or d[1], o.windows or d[2], o.steps or d[3]
end
local function count_args(model)
  local w, k, s = counts(model)
  return string.format("--warm %d --windows %d --steps %d", w, k, s)
end

local torch_ok, torch_note = false, nil
if o.no_torch then
  torch_note = "PyTorch skipped (--no-torch)"
elseif not exists(torch_script) then
  torch_note = "PyTorch skipped: " .. torch_script .. " not found"
elseif not (have_python and os.execute(PYTHON .. " -c 'import torch' >/dev/null 2>&1")) then
  torch_note = "PyTorch skipped: " .. PYTHON .. " cannot import torch"
else
  torch_ok = true
end
if torch_note then print(torch_note) end

-- Other processes on the machine distort both sides; say so up front.
local function loadavg()
  local f = io.open("/proc/loadavg", "r")
  if not f then return nil end
  local v = tonumber(f:read("a"):match("^(%S+)"))
  f:close()
  return v
end
local load_start = loadavg()
if load_start and load_start > 0.5 then
  print(string.format("warning: load average %.2f at start: other processes are running, "
                      .. "results will be noisy", load_start))
end

-- merge(a, b) -> one side's result over rounds a and b: per phase the
-- round with the higher median (its min and max with it), the higher peak
-- RSS, ok only if both were.
local function merge(a, b)
  if not a then return b end
  local r = {ok = a.ok and b.ok, lines = b.lines}
  for _, phase in ipairs{"train", "infer"} do
    local x, y = a[phase], b[phase]
    r[phase] = (x and y) and (y[1] > x[1] and y or x) or x or y
  end
  for _, k in ipairs{"rss_kb", "vmhwm_kb", "train_kb"} do
    r[k] = (a[k] and b[k]) and math.max(a[k], b[k]) or a[k] or b[k]
  end
  return r
end

local t_start = nn.now()
local results, rounds = {}, {}
local torch_version
for round = 1, o.rounds do
  for _, m in ipairs(o.models) do
    local tag = o.rounds > 1 and string.format(" (round %d of %d)", round, o.rounds) or ""
    local nr = run("nnlua " .. m .. tag, string.format("%s %s --model %s --threads %d %s", quote(interp),
                   quote(bench_lua), m, o.threads, count_args(m)), true)
    local tr
    if torch_ok then
      tr = run("PyTorch " .. m .. tag, string.format("%s %s --model %s --threads %d %s", PYTHON,
               quote(torch_script), m, o.threads, count_args(m)), true)
      for _, line in ipairs(tr.lines) do torch_version = torch_version or line:match("^torch (%S+)") end
    end
    rounds[m] = rounds[m] or {}
    rounds[m][round] = {nnlua = nr, torch = tr}
    results[m] = results[m] or {}
    results[m].nnlua = merge(results[m].nnlua, nr)
    results[m].torch = tr and merge(results[m].torch, tr) or results[m].torch
  end
end

-- Thread scaling: vgg16-32 training with 1 then 2 threads, back to back,
-- as many times as there are rounds (at least twice: 1, 2, 1, 2); each
-- thread count keeps its best run, since other processes on the machine
-- can only slow a run down.
local scaling = {}
do
  local w, k, s = counts("vgg16-32")
  k = math.max(2, k // 2)
  scaling.runs, scaling.all = math.max(2, o.rounds), {[1] = {}, [2] = {}}
  for _ = 1, scaling.runs do
    for _, n in ipairs{1, 2} do
      local r = run(string.format("nnlua vgg16-32 train, %d thread(s)", n),
                    string.format("%s %s --model vgg16-32 --threads %d --train-only --warm %d --windows %d --steps %d",
                                  quote(interp), quote(bench_lua), n, w, k, s), false)
      local rate = r.train and r.train[1]
      if rate and (not scaling[n] or rate > scaling[n]) then scaling[n] = rate end
      table.insert(scaling.all[n], rate and string.format("%.1f", rate) or "n/a")
    end
  end
  scaling.windows, scaling.steps = k, s
end

-- Start-up: wall time of whole processes, including the /bin/sh that
-- os.execute starts (about 1 ms).
local function startup_ms(cmd)
  local t = {}
  for i = 1, o.startup_runs do
    local t0 = nn.now()
    local ok = os.execute(cmd .. " >/dev/null 2>&1")
    if not ok then return nil end
    t[i] = (nn.now() - t0) * 1000
  end
  return median(t)
end
print("== start-up")
local build_cnn = [[local nn = require 'nn'
local m = nn.Sequential{nn.Conv2d(1, 32, 3, {padding = 1}), nn.ReLU(), nn.Conv2d(32, 32, 3, {padding = 1}),
  nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, {padding = 1}), nn.ReLU(),
  nn.Conv2d(64, 64, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
  nn.Linear(3136, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10)}
local opt = nn.optim.Adam(m:parameters(), {lr = 1e-3})]]
local nn_startup = startup_ms(quote(interp) .. " -e " .. quote(build_cnn))
local torch_startup
if torch_ok then
  local build_torch = [[import torch, torch.nn as nn
m = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
    nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
    nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))
opt = torch.optim.Adam(m.parameters(), lr=1e-3)]]
  torch_startup = startup_ms(PYTHON .. " -c " .. quote(build_torch))
end

-- The machine's float32 ceilings (bench/peak.c), to read GFLOPS against.
print("== machine ceiling")
local peak = {}
do
  local h = io.popen(quote(root .. "/build/bench_peak") .. " " .. o.threads .. " 2>&1")
  if h then
    for line in h:lines() do
      print("   " .. line)
      local what, nt, gf = line:match("^PEAK (%S+) (%d+) ([%d.]+)")
      if what then peak[what .. "/" .. nt] = tonumber(gf) end
    end
    h:close()
  end
end
local elapsed = nn.now() - t_start

-- The table.
local function fmt_rate(r) return r and string.format("%.1f", r) or "n/a" end
local function fmt_rss(kb) return kb and string.format("%.0f MiB", kb / 1024) or "n/a" end
local function verdict(ok) return ok and "met" or "NOT met" end
-- ratio cell: "1.52x met (>= 1.5x)"; lower_better for memory.
local function ratio_cell(a, b, target, lower_better)
  if not a or not b or b == 0 then return "n/a" end
  local r = a / b
  local ok = lower_better and r <= target or (not lower_better and r >= target)
  return string.format("%.2fx %s (%s %.1fx)", r, verdict(ok), lower_better and "<=" or ">=", target)
end

local out = {}
local function emit(s) out[#out + 1] = s end
local cpu = "?"
do
  local f = io.open("/proc/cpuinfo", "r")
  if f then
    for line in f:lines() do
      local v = line:match("^model name%s*:%s*(.-)%s*$")
      if v then cpu = v break end
    end
    f:close()
  end
end
local ncpu = 0
do
  local p = io.popen("nproc 2>/dev/null")
  ncpu = tonumber(p:read("l") or "") or 0
  p:close()
end
local proto = {}
for _, m in ipairs(o.models) do
  local w, k, s = counts(m)
  local d = DEFAULTS[m]
  proto[#proto + 1] = string.format("%s %d+%dx%d%s", m, w, k, s,
                                    (w == d[1] and k == d[2] and s == d[3]) and "" or " (not the default)")
end
emit(string.format("### nnlua %s vs PyTorch %s, %d threads, batch 64, float32 (%s, %d CPUs, %s)",
                   nn.version, torch_version or "(not run)", o.threads, cpu, ncpu, os.date("%Y-%m-%d %H:%M")))
emit("")
emit("Protocol of `shared/bench/torch_reference.py`, both sides in the same run, interleaved; img/s are "
     .. "medians over windows (warm-up + windows x steps: " .. table.concat(proto, ", ")
     .. (o.rounds > 1 and string.format("), the best of %d interleaved rounds on each side", o.rounds) or "")
     .. "). Peak RSS of training: nnlua's VmHWM at the end of its training phase; PyTorch's whole "
     .. "process (its inference needs less than its training), by " .. (rss_method or "?")
     .. ". Ratios are nnlua / PyTorch.")
if torch_note then emit(""); emit("**" .. torch_note .. "**") end
emit("")
emit("| model | nnlua train img/s | torch train img/s | train ratio | nnlua infer img/s | torch infer img/s "
     .. "| infer ratio | nnlua peak RSS | torch peak RSS | RSS ratio |")
emit("|---|---|---|---|---|---|---|---|---|---|")
local failed = false
for _, m in ipairs(o.models) do
  local n, t = results[m].nnlua, results[m].torch or {}
  if not n.ok or (torch_ok and not t.ok) then failed = true end
  local nt, ni = n.train and n.train[1], n.infer and n.infer[1]
  local tt, ti = t.train and t.train[1], t.infer and t.infer[1]
  emit(string.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", m,
                     fmt_rate(nt), fmt_rate(tt), ratio_cell(nt, tt, TRAIN_TARGET[m]),
                     fmt_rate(ni), fmt_rate(ti), ratio_cell(ni, ti, INFER_TARGET),
                     fmt_rss(n.train_kb), fmt_rss(t.rss_kb), ratio_cell(n.train_kb, t.rss_kb, RSS_TARGET, true)))
end
emit("")
if o.rounds > 1 then
  -- every round's medians, so that the spread is on the page
  for _, m in ipairs(o.models) do
    local cells = {}
    for _, side in ipairs{"nnlua", "torch"} do
      for _, phase in ipairs{"train", "infer"} do
        local v = {}
        for round = 1, o.rounds do
          local r = rounds[m][round][side]
          v[#v + 1] = r and r[phase] and string.format("%.1f", r[phase][1]) or "n/a"
        end
        if side == "nnlua" or torch_ok then
          cells[#cells + 1] = string.format("%s %s %s", side == "torch" and "PyTorch" or side, phase,
                                            table.concat(v, " / "))
        end
      end
    end
    emit(string.format("- %s, img/s by round: %s", m, table.concat(cells, "; ")))
  end
end
for _, m in ipairs(o.models) do
  local n = results[m].nnlua
  if n.train_kb and n.rss_kb and n.rss_kb > 1.1 * n.train_kb then
    emit(string.format("- %s: nnlua's whole process, inference included, peaked at %s (%.1fx its training peak)",
                       m, fmt_rss(n.rss_kb), n.rss_kb / n.train_kb))
  end
end
if scaling[1] and scaling[2] then
  local r = scaling[2] / scaling[1]
  emit(string.format("- Thread scaling, nnlua vgg16-32 train (best of %d runs of %d windows x %d steps each, "
                     .. "1 and 2 threads alternating: %s and %s img/s): 1 thread %.1f img/s, "
                     .. "2 threads %.1f img/s: %.2fx, %s (>= %.1fx)", scaling.runs, scaling.windows, scaling.steps,
                     table.concat(scaling.all[1], ", "), table.concat(scaling.all[2], ", "),
                     scaling[1], scaling[2], r, verdict(r >= SCALING_TARGET), SCALING_TARGET))
else
  failed = true
  emit("- Thread scaling: n/a (run failed)")
end
if nn_startup then
  emit(string.format("- Start-up, script that builds fmnist-cnn (+ Adam) and exits, median of %d runs: nnlua %.1f ms, "
                     .. "%s (< %d ms); PyTorch (`import torch` + the same) %s", o.startup_runs, nn_startup,
                     verdict(nn_startup < STARTUP_TARGET_MS), STARTUP_TARGET_MS,
                     torch_startup and string.format("%.0f ms", torch_startup) or "n/a"))
else
  failed = true
  emit("- Start-up: n/a (run failed)")
end
if peak["fma_avx2/1"] then
  local nt = o.threads
  local p512 = peak["fma_avx512/1"] and string.format("; AVX-512 %.0f and %.0f", peak["fma_avx512/1"],
                                                        peak["fma_avx512/" .. nt] or 0) or ""
  emit(string.format("- Machine ceiling (bench/peak.c): FMA peak %.0f GFLOPS on 1 thread, %.0f on %d (AVX2)%s; "
                     .. "OpenBLAS sgemm 1024^3 on 1 thread %.0f GFLOPS. Per-layer achieved GFLOPS: "
                     .. "`model:profile(shape)`", peak["fma_avx2/1"], peak["fma_avx2/" .. nt] or 0, nt, p512,
                     peak["sgemm1024/1"] or 0))
end
emit(string.format("- Whole benchmark: %.0f s; load average %s at start, %s at end (1-minute; "
                   .. "above ~0.5 means other processes shared the CPUs)",
                   elapsed, load_start and string.format("%.2f", load_start) or "?",
                   loadavg() and string.format("%.2f", loadavg()) or "?"))

local text = table.concat(out, "\n") .. "\n"
print("")
io.write(text)
local f = io.open(root .. "/build/bench.md", "w")
if f then
  f:write(text)
  f:close()
  print("(written to " .. root .. "/build/bench.md)")
end
if failed then os.exit(1) end
