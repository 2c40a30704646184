-- nn.fit and nn.evaluate: the training loop, with a live progress line on a
-- terminal (one plain line per epoch otherwise), validation, history, and
-- per-epoch checkpoints for --save / --resume.
local _, core = ...
local T = core.train

local M = {}

local function argerror(n, fname, msg)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
end

-- "1:05" or "1:02:03" for a duration in seconds.
local function clock(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  local h, m = s // 3600, (s % 3600) // 60
  if h > 0 then return string.format("%d:%02d:%02d", h, m, s % 60) end
  return string.format("%d:%02d", m, s % 60)
end
M.clock = clock

-- The number of batches of a loader, or nil when it cannot tell.
local function batches_of(loader)
  local ok, n = pcall(function() return #loader end)
  if ok and type(n) == "number" and n > 0 then return n end
  return nil
end

-- Progress reporting.  On a terminal, rewrite one line at most 10 times a
-- second; otherwise stay silent until the epoch's summary line.
local Progress = {}
Progress.__index = Progress

function Progress.new(out, epochs, verbose)
  local tty = verbose and out == io.stdout and T.isatty(1)
  return setmetatable({out = out, epochs = epochs, tty = tty, verbose = verbose, last = 0}, Progress)
end

function Progress:update(epoch, batch, total, loss, acc, images, elapsed, force)
  if not self.tty then return end
  local now = core.now()
  if not force and now - self.last < 0.1 then return end
  self.last = now
  local rate = elapsed > 0 and images / elapsed or 0
  local left = total and batch > 0 and elapsed * (total - batch) / batch or math.huge
  local line = string.format("epoch %d/%d [%s/%s] loss %.4f acc %.2f%% %.0f img/s %s elapsed %s left",
                             epoch, self.epochs, tostring(batch), tostring(total or "?"), loss, 100 * acc,
                             rate, clock(elapsed), clock(left))
  self.out:write("\r", line, "\27[K")
  self.out:flush()
end

function Progress:finish(rec, metric_names)
  if not self.verbose then return end
  local parts = {string.format("epoch %d/%d: train_loss %.4f train_acc %.2f%%", rec.epoch, self.epochs,
                               rec.train_loss, 100 * rec.train_accuracy)}
  if rec.val_loss then
    parts[#parts + 1] = string.format("val_loss %.4f val_acc %.2f%%", rec.val_loss, 100 * rec.val_accuracy)
  end
  for _, name in ipairs(metric_names or {}) do
    if type(rec["val_" .. name]) == "number" then
      parts[#parts + 1] = string.format("val_%s %.4f", name, rec["val_" .. name])
    end
  end
  parts[#parts + 1] = string.format("%.0f img/s %.1fs", rec.images_per_second, rec.seconds)
  if self.tty then self.out:write("\r\27[K") end
  self.out:write(table.concat(parts, " "), "\n")
  self.out:flush()
end

-- Runs the model on every batch of loader in eval mode; returns {loss=,
-- accuracy=, n=, predictions=tensor [n] (1-based), targets=tensor [n]}
-- plus any requested metrics (see nn.metrics, when available).
local function run_eval(model, loader, loss, metric_names, keep_predictions)
  local was_training = model.training
  model:eval()
  local n, correct, total_loss = 0, 0, 0
  local preds, targets = {}, {}
  local ok, err = pcall(function()
    for x, y in loader do
      local out = model:forward(x)
      local b = y:size(1)
      if loss then total_loss = total_loss + loss:forward(out, y) * b end
      correct = correct + T.count_correct(out, y)
      if keep_predictions then
        preds[#preds + 1] = T.predictions(out)
        targets[#targets + 1] = y:clone()
      end
      n = n + b
    end
  end)
  model:train(was_training)
  if not ok then error(err, 0) end
  local r = {n = n, accuracy = n > 0 and correct / n or 0}
  if loss then r.loss = n > 0 and total_loss / n or 0 end
  if keep_predictions and #preds > 0 then
    local stack = function(list)
      if #list == 1 then return list[1] end
      local total = 0
      for _, t in ipairs(list) do total = total + t:numel() end
      local out = core.zeros(total)
      local pos = 1
      for _, t in ipairs(list) do
        out:narrow(1, pos, t:numel()):copy_(t)
        pos = pos + t:numel()
      end
      return out
    end
    r.predictions, r.targets = stack(preds), stack(targets)
    local metrics = package.loaded["nn.metrics"]
    if metrics and metric_names then
      local classes = loader.dataset and loader.dataset.classes
      local nc = classes and #classes or nil
      if not nc then
        nc = math.floor(math.max(r.predictions:max():item(), r.targets:max():item()))
      end
      for _, name in ipairs(metric_names) do
        local f = metrics[name]
        if f then r[name] = f(r.predictions, r.targets, nc) end
      end
    end
  end
  return r
end

-- nn.evaluate(model, loader, {loss=nil, metrics=nil}) -> {loss=,
-- accuracy=, n=, ...}: one pass in eval mode (the mode is restored).
function M.evaluate(model, loader, opts)
  if type(model) ~= "table" or not model.forward then argerror(1, "evaluate", "module expected") end
  if loader == nil then argerror(2, "evaluate", "data loader expected, got nil") end
  opts = opts or {}
  if type(opts) ~= "table" then argerror(3, "evaluate", "options table expected") end
  local metrics = opts.metrics
  return run_eval(model, loader, opts.loss, metrics, metrics ~= nil and #metrics > 0)
end

local fit_options = {
  model = true, loss = true, optimizer = true, train = true, val = true, epochs = true,
  metrics = true, callbacks = true, checkpoint = true, resume = true, initial_epoch = true,
  verbose = true, out = true, scheduler = true, scheduler_step = true, clip_grad_norm = true,
  hot_reload = true,
}

-- Opt-in hot reload: between epochs, when the file `path` has changed, it
-- is run again; it returns a table whose fields replace parts of the
-- running fit: transform (the training loader's per-sample or batch
-- transform), lr (every group's learning rate), scheduler (a function(opt)
-- returning a new scheduler).  Weights and optimizer state are kept.  A file
-- that fails to run is reported and the run goes on unchanged.  The file may
-- be the model script itself: while it is re-run, nn.reloading is true, and
-- the script returns its settings table early instead of training again.
local function reloader(path, out, verbose)
  if path == nil then return nil end
  if type(path) ~= "string" then argerror(1, "fit", "option 'hot_reload' must be a file path") end
  -- The file's contents, not its mtime, tell whether it changed: an edit
  -- within the file system's timestamp resolution still counts.
  local function contents()
    local f = io.open(path, "rb")
    if not f then return nil end
    local text = f:read("a")
    f:close()
    return text
  end
  local last = contents()
  return function(train, opt, sched)
    local now = contents()
    if now == nil or now == last then return sched end
    last = now
    local nn = package.loaded["nn"]
    nn.reloading = true
    local ok, cfg = pcall(dofile, path)
    nn.reloading = nil
    if not ok or type(cfg) ~= "table" then
      out:write(string.format("hot reload: %s: %s; keeping the current settings\n", path,
                              ok and "did not return a table" or tostring(cfg)))
      return sched
    end
    local changed = {}
    if cfg.transform ~= nil then train.transform = cfg.transform; changed[#changed + 1] = "transform" end
    if type(cfg.lr) == "number" then opt.lr = cfg.lr; changed[#changed + 1] = "lr" end
    if type(cfg.scheduler) == "function" then sched = cfg.scheduler(opt); changed[#changed + 1] = "scheduler" end
    if verbose then
      out:write(string.format("hot reload: %s: %s\n", path, #changed > 0 and table.concat(changed, ", ") or "nothing to apply"))
    end
    return sched
  end
end

-- After a non-finite loss: runs x through the model's layers one by one to
-- name the first whose output is not finite (only then, so the check costs
-- nothing while training goes well).
local function diagnose_nonfinite(model, x)
  if not T.all_finite(x) then return "the input batch itself contains NaN or infinite values" end
  for _, np in ipairs(model:named_parameters()) do
    if not T.all_finite(np[2]) then
      return string.format("parameter %s is no longer finite", np[1])
    end
  end
  local ok, msg = pcall(function()
    for _, leaf in ipairs(model:leaves()) do
      x = leaf.m:forward(x)
      if not T.all_finite(x) then
        return string.format("the first non-finite output comes from layer %s (%s)", leaf.name, leaf.m.__name)
      end
    end
    return "every layer's output is finite: the loss's input or target is out of its domain"
  end)
  return ok and msg or ("could not locate it: " .. tostring(msg))
end

-- Scales the gradients so that their global L2 norm is at most max_norm
-- (torch.nn.utils.clip_grad_norm_); returns the norm before clipping.
local function clip_grad_norm(params, max_norm)
  local total = 0
  for _, p in ipairs(params) do
    local g = p:grad()
    if g and p:requires_grad() then total = total + T.sumsq(g) end
  end
  total = math.sqrt(total)
  local coef = max_norm / (total + 1e-6)
  if coef < 1 then
    for _, p in ipairs(params) do
      local g = p:grad()
      if g and p:requires_grad() then g:mul_(coef) end
    end
  end
  return total
end

-- Early stopping state for callbacks.early_stopping = {monitor="val_loss",
-- patience=5, mode="min"|"max" (default from the name), min_delta=0}.
local function early_stopper(spec)
  if spec == nil then return nil end
  if type(spec) ~= "table" then argerror(1, "fit", "callbacks.early_stopping must be a table") end
  local monitor = spec.monitor or "val_loss"
  local mode = spec.mode or (monitor:match("loss$") and "min" or "max")
  local patience, delta = spec.patience or 5, spec.min_delta or 0
  local best, bad = nil, 0
  return function(rec)
    local v = rec[monitor]
    if type(v) ~= "number" then
      error(string.format("nn.fit: early stopping monitors '%s', which the history does not have", monitor), 0)
    end
    local better = best == nil or (mode == "min" and v < best - delta) or (mode == "max" and v > best + delta)
    if better then best, bad = v, 0 else bad = bad + 1 end
    return bad >= patience
  end
end

-- Saves a checkpoint of the run after `epoch` (atomically, through
-- nn.save_checkpoint).
-- The running script and its command line (for tools that rebuild the
-- model from a checkpoint), and a hash of the model's structure.
-- A hash (FNV-1a, 64 bits, as hex) of the model's structure: its printed
-- form and every state_dict entry's name and shape.
local function structure_hash(model)
  local parts = {tostring(model)}
  for _, e in ipairs(model:state_entries()) do
    parts[#parts + 1] = e[1] .. "[" .. table.concat(e[2]:shape(), ",") .. "]"
  end
  local text = table.concat(parts, "\n")
  local h = -3750763034362895579 -- 14695981039346656037 as a signed 64-bit integer
  for i = 1, #text do
    h = (h ~ text:byte(i)) * 1099511628211
  end
  return string.format("%016x", h)
end
M.structure_hash = structure_hash

local function script_info(model)
  local info = {structure = structure_hash(model)}
  if type(arg) == "table" and type(arg[0]) == "string" then
    info.script = arg[0]
    info.args = {}
    for i = 1, #arg do info.args[i] = arg[i] end
  end
  return info
end

local function save_checkpoint(path, args, epoch, history)
  local save = package.loaded["nn"] and package.loaded["nn"].save_checkpoint
  if not save then error("nn.fit: checkpoints need nn.save_checkpoint, which is not available", 0) end
  local seed, counter = core.rng_state()
  save(path, {
    model = args.model:state_dict(),
    optimizer = args.optimizer:state_dict(),
    scheduler = args.scheduler and args.scheduler:state_dict() or nil,
    epoch = epoch,
    history = history,
    rng = {seed = seed, counter = counter},
    meta = script_info(args.model),
    data = args.train.state and args.train:state() or nil,
  })
end

-- nn.fit{model=, loss=, optimizer=, train=loader, val=loader, epochs=,
-- metrics=nil, callbacks=nil, checkpoint=nil, resume=nil, verbose=true,
-- scheduler=nil, scheduler_step="epoch"|"batch", clip_grad_norm=nil}
-- trains for `epochs` epochs in all and returns the history: one table per
-- epoch {epoch=, train_loss=, train_accuracy=, val_loss=, val_accuracy=,
-- seconds=, images_per_second=, lr=, ...}.
--   checkpoint = {path=, every=1, keep_best=nil}: save the run every
--   `every` epochs; keep_best = true (or a history field name) also keeps
--   the best epoch's checkpoint in path .. ".best".
--   resume = path: continue the run saved there (weights, optimizer, RNG,
--   epoch, history) up to `epochs` in all, as Keras's initial_epoch.
--   callbacks = {on_batch = f(info), on_epoch = f(record) -> "stop"?,
--                early_stopping = {monitor="val_loss", patience=5, min_delta=0}}.
--   scheduler: stepped after every epoch (ReduceLROnPlateau with val_loss,
--   or train_loss without val) or, for OneCycleLR, after every batch.
--   clip_grad_norm = max: gradients rescaled to a global L2 norm <= max.
--   hot_reload = path: between epochs, pick up an edited augmentation
--   pipeline, lr or schedule from that Lua file (see reloader above).
--   A non-finite loss stops training with an error naming the first layer
--   whose output is not finite.
function M.fit(args)
  if type(args) ~= "table" then argerror(1, "fit", "table expected, got " .. type(args)) end
  for k in pairs(args) do
    if not fit_options[k] then argerror(1, "fit", "unknown option '" .. tostring(k) .. "'") end
  end
  local model, loss, opt, train = args.model, args.loss, args.optimizer, args.train
  if type(model) ~= "table" or not model.forward then argerror(1, "fit", "option 'model' must be a module") end
  if loss == nil or not loss.forward then argerror(1, "fit", "option 'loss' must be a loss") end
  if type(opt) ~= "table" or not opt.step then argerror(1, "fit", "option 'optimizer' must be an optimizer") end
  if not train then argerror(1, "fit", "option 'train' (a data loader) is required") end
  local epochs = args.epochs
  if math.type(epochs) ~= "integer" or epochs < 0 then
    argerror(1, "fit", "option 'epochs' must be a non-negative integer")
  end
  local verbose = args.verbose ~= false
  local out = args.out or io.stdout
  local callbacks = args.callbacks or {}
  local metric_names = args.metrics
  local ckpt = args.checkpoint
  if ckpt ~= nil and (type(ckpt) ~= "table" or type(ckpt.path) ~= "string") then
    argerror(1, "fit", "option 'checkpoint' must be a table {path=, every=1}")
  end

  local sched = args.scheduler
  if sched ~= nil and (type(sched) ~= "table" or not sched.step) then
    argerror(1, "fit", "option 'scheduler' must be a learning-rate scheduler")
  end
  local sched_step = args.scheduler_step or (sched and getmetatable(sched).__name == "OneCycleLR" and "batch" or "epoch")
  if sched_step ~= "epoch" and sched_step ~= "batch" then
    argerror(1, "fit", "option 'scheduler_step' must be \"epoch\" or \"batch\"")
  end
  local plateau = sched and getmetatable(sched).__name == "ReduceLROnPlateau"
  local max_norm = args.clip_grad_norm
  if max_norm ~= nil and (type(max_norm) ~= "number" or max_norm <= 0) then
    argerror(1, "fit", "option 'clip_grad_norm' must be a positive number")
  end
  local params = max_norm and model:parameters() or nil
  local stop_early = early_stopper(callbacks.early_stopping)
  local reload = reloader(args.hot_reload, out, verbose)
  local history, start = {}, args.initial_epoch or 0
  if args.resume then
    local load = package.loaded["nn"].load_checkpoint
    local c = load(args.resume)
    local want = c.meta and c.meta.structure
    if want and want ~= structure_hash(model) then
      error(string.format("nn.fit: %s was written by a model of another structure (hash %s, this model %s); " ..
                          "nothing was loaded", args.resume, want, structure_hash(model)), 0)
    end
    model:load_state_dict(c.model)
    opt:load_state_dict(c.optimizer)
    if args.scheduler and c.scheduler then args.scheduler:load_state_dict(c.scheduler) end
    if c.rng then core.set_rng_state(c.rng.seed, c.rng.counter) end
    start = c.epoch or 0
    history = c.history or {}
    if verbose then
      out:write(string.format("resumed %s at epoch %d\n", args.resume, start))
    end
  end
  if train.set_position then train:set_position(start + 1, 0) end

  local best_value
  local progress = Progress.new(out, epochs, verbose)
  local total = batches_of(train)
  for epoch = start + 1, epochs do
    model:train()
    local t0 = core.now()
    local n, correct, total_loss, batch = 0, 0, 0, 0
    for x, y in train do
      batch = batch + 1
      opt:zero_grad()
      local output = model:forward(x)
      local l = loss:forward(output, y)
      if l ~= l or l == math.huge or l == -math.huge then
        if progress.tty then out:write("\n") end
        error(string.format("nn.fit: the loss became %s at epoch %d, batch %d; %s", tostring(l), epoch, batch,
                            diagnose_nonfinite(model, x)), 0)
      end
      model:backward(x, loss:backward(output, y))
      if max_norm then clip_grad_norm(params, max_norm) end
      opt:step()
      if sched and sched_step == "batch" then sched:step() end
      local b = y:size(1)
      n = n + b
      total_loss = total_loss + l * b
      correct = correct + T.count_correct(output, y)
      progress:update(epoch, batch, total, total_loss / n, correct / n, n, core.now() - t0)
      if callbacks.on_batch then
        callbacks.on_batch{epoch = epoch, batch = batch, loss = l, size = b}
      end
    end
    local train_seconds = core.now() - t0
    local rec = {
      epoch = epoch,
      train_loss = n > 0 and total_loss / n or 0,
      train_accuracy = n > 0 and correct / n or 0,
      images_per_second = train_seconds > 0 and n / train_seconds or 0,
      lr = opt.lr,
    }
    if args.val then
      local v = run_eval(model, args.val, loss, metric_names, metric_names ~= nil and #metric_names > 0)
      rec.val_loss, rec.val_accuracy = v.loss, v.accuracy
      for _, name in ipairs(metric_names or {}) do rec["val_" .. name] = v[name] end
    end
    rec.seconds = core.now() - t0
    history[#history + 1] = rec
    progress:finish(rec, metric_names)
    if ckpt and (epoch % (ckpt.every or 1) == 0 or epoch == epochs) then
      save_checkpoint(ckpt.path, args, epoch, history)
    end
    if ckpt and ckpt.keep_best then
      -- keep_best = true (val_loss, or train_loss without validation) or the
      -- name of the history field to monitor; the best epoch so far is kept
      -- in path .. ".best"
      local key = type(ckpt.keep_best) == "string" and ckpt.keep_best or (rec.val_loss and "val_loss" or "train_loss")
      local v = rec[key]
      if type(v) ~= "number" then
        error(string.format("nn.fit: checkpoint.keep_best monitors '%s', which the history does not have", key), 0)
      end
      local lower = key:match("loss$") ~= nil
      if best_value == nil or (lower and v < best_value) or (not lower and v > best_value) then
        best_value = v
        save_checkpoint(ckpt.path .. ".best", args, epoch, history)
      end
    end
    if sched and sched_step == "epoch" then
      if plateau then sched:step(rec.val_loss or rec.train_loss) else sched:step() end
    end
    if callbacks.on_epoch and callbacks.on_epoch(rec) == "stop" then break end
    if reload then
      sched = reload(train, opt, sched)
      plateau = sched and getmetatable(sched).__name == "ReduceLROnPlateau"
    end
    if stop_early and stop_early(rec) then
      rec.stopped_early = true
      if verbose then out:write(string.format("early stopping after epoch %d\n", epoch)) end
      break
    end
  end
  return history
end

-- Writes a file atomically: to a temporary name beside it, then renamed.
local function write_atomic(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then error("save_history: cannot write " .. tostring(err), 3) end
  local ok, werr = f:write(text)
  f:close()
  if not ok then os.remove(tmp); error("save_history: " .. path .. ": " .. tostring(werr), 3) end
  local rok, rerr = os.rename(tmp, path)
  if not rok then os.remove(tmp); error("save_history: " .. tostring(rerr), 3) end
end

-- The columns of a history: epoch first, then every other numeric field in
-- a stable order (the usual ones first).
local function history_columns(history)
  local order = {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds",
                 "images_per_second"}
  local seen, cols = {}, {}
  for _, k in ipairs(order) do
    for _, r in ipairs(history) do
      if r[k] ~= nil then cols[#cols + 1] = k; seen[k] = true; break end
    end
  end
  local extra = {}
  for _, r in ipairs(history) do
    for k, v in pairs(r) do
      if not seen[k] and (type(v) == "number" or type(v) == "boolean") then extra[k] = true end
    end
  end
  local names = {}
  for k in pairs(extra) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do cols[#cols + 1] = k end
  return cols
end

-- nn.save_history(history, prefix) writes prefix .. ".csv" (one row per
-- epoch, a header row of column names) and prefix .. ".json" (the array of
-- records), each atomically; with nn.plot available also prefix .. ".png".
-- Returns the list of files written.
function M.save_history(history, prefix)
  if type(history) ~= "table" then argerror(1, "save_history", "history table expected, got " .. type(history)) end
  if type(prefix) ~= "string" or prefix == "" then argerror(2, "save_history", "file name prefix expected") end
  prefix = prefix:gsub("%.csv$", ""):gsub("%.json$", "")
  local cols = history_columns(history)
  local lines = {table.concat(cols, ",")}
  for _, r in ipairs(history) do
    local row = {}
    for i, k in ipairs(cols) do
      local v = r[k]
      if v == nil then row[i] = ""
      elseif math.type(v) == "integer" then row[i] = tostring(v)
      elseif type(v) == "number" then row[i] = string.format("%.9g", v)
      else row[i] = tostring(v) end
    end
    lines[#lines + 1] = table.concat(row, ",")
  end
  write_atomic(prefix .. ".csv", table.concat(lines, "\n") .. "\n")
  local records = {}
  for i, r in ipairs(history) do
    local rec = {}
    for k, v in pairs(r) do
      if type(v) == "number" or type(v) == "boolean" or type(v) == "string" then rec[k] = v end
    end
    records[i] = rec
  end
  write_atomic(prefix .. ".json", core.io.json_encode(records) .. "\n")
  local files = {prefix .. ".csv", prefix .. ".json"}
  local nn = package.loaded["nn"]
  if nn and nn.plot and nn.plot.history then
    nn.plot.history(history, prefix .. ".png")
    files[#files + 1] = prefix .. ".png"
  end
  return files
end

return M
