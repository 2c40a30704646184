-- nn.optim.lr_scheduler: learning-rate schedules with torch.optim.lr_scheduler's
-- formulas (the recursive "chainable" forms of PyTorch 1.13, so values agree
-- to rounding): StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR,
-- LinearLR (linear warm-up), OneCycleLR and ReduceLROnPlateau.
--
--   local sched = nn.optim.lr_scheduler.StepLR(opt, {step_size = 30, gamma = 0.1})
--   for epoch = 1, 90 do train_one_epoch(); sched:step() end
--
-- As in PyTorch, constructing a scheduler sets each group's lr for step 0
-- and records group.initial_lr; sched:step() advances one step (an epoch, or
-- a batch for OneCycleLR); sched:get_last_lr() -> the lrs it set;
-- state_dict()/load_state_dict() save and restore the position.
local M = {}

local function argerror(n, fname, msg)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), 4)
end

-- Checks the options table against allowed keys with their types.
local function check(fname, opts, spec)
  if opts ~= nil and type(opts) ~= "table" then argerror(2, fname, "options table expected, got " .. type(opts)) end
  opts = opts or {}
  for k, v in pairs(opts) do
    local want = spec[k]
    if not want then argerror(2, fname, "unknown option '" .. tostring(k) .. "'") end
    local ok = (want == "number" and type(v) == "number") or (want == "integer" and math.type(v) == "integer")
      or (want == "boolean" and type(v) == "boolean") or (want == "string" and type(v) == "string")
      or (want == "table" and type(v) == "table")
    if not ok then argerror(2, fname, string.format("option '%s' must be %s, got %s", k, want == "integer" and "an integer" or "a " .. want, type(v))) end
  end
  return opts
end

local Scheduler = {}
Scheduler.__index = Scheduler

-- Common set-up: remembers the optimizer and each group's initial_lr, then
-- takes step 0 as PyTorch's constructor does.
local function new(cls, opt, fname)
  if type(opt) ~= "table" or type(opt.param_groups) ~= "table" then
    argerror(1, fname, "optimizer expected, got " .. type(opt))
  end
  local self = setmetatable({optimizer = opt, last_epoch = -1, _name = fname}, cls)
  self.base_lrs = {}
  for i, g in ipairs(opt.param_groups) do
    if g.initial_lr == nil then g.initial_lr = g.lr end
    self.base_lrs[i] = g.initial_lr
  end
  return self
end

-- step(): advances one step and sets every group's lr.
function Scheduler:step()
  self.last_epoch = self.last_epoch + 1
  local lrs = self:get_lr()
  for i, g in ipairs(self.optimizer.param_groups) do g.lr = lrs[i] end
  self._last_lr = lrs
end

-- get_last_lr() -> array of the learning rates set by the last step.
function Scheduler:get_last_lr()
  local out = {}
  for i, v in ipairs(self._last_lr or {}) do out[i] = v end
  return out
end

-- state_dict() -> a plain table of the scheduler's state (no optimizer).
function Scheduler:state_dict()
  local s = {}
  for k, v in pairs(self) do
    if k ~= "optimizer" and type(v) ~= "function" then
      s[k] = type(v) == "table" and table.move(v, 1, #v, 1, {}) or v
    end
  end
  return s
end

-- load_state_dict(s): restores a state saved by state_dict().
function Scheduler:load_state_dict(s)
  if type(s) ~= "table" then argerror(1, "load_state_dict", "table expected, got " .. type(s)) end
  if s._name and s._name ~= self._name then
    error(string.format("load_state_dict: state of a %s given to a %s", s._name, self._name), 2)
  end
  for k, v in pairs(s) do self[k] = v end
end

local function class(name)
  local cls = setmetatable({}, {__index = Scheduler})
  cls.__index = cls
  cls.__name = name
  return cls
end

local function group_lrs(self)
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do out[i] = g.lr end
  return out
end

-- StepLR(opt, {step_size=, gamma=0.1}): lr *= gamma every step_size steps.
local StepLR = class("StepLR")
function StepLR:get_lr()
  local lrs = group_lrs(self)
  if self.last_epoch == 0 or self.last_epoch % self.step_size ~= 0 then return lrs end
  for i = 1, #lrs do lrs[i] = lrs[i] * self.gamma end
  return lrs
end
M.StepLR = setmetatable({}, {__call = function(_, opt, opts)
  opts = check("StepLR", opts, {step_size = "integer", gamma = "number"})
  if not opts.step_size or opts.step_size < 1 then argerror(2, "StepLR", "option 'step_size' (a positive integer) is required") end
  local self = new(StepLR, opt, "StepLR")
  self.step_size, self.gamma = opts.step_size, opts.gamma or 0.1
  self:step()
  return self
end})

-- MultiStepLR(opt, {milestones={...}, gamma=0.1}): lr *= gamma at each
-- milestone step.
local MultiStepLR = class("MultiStepLR")
function MultiStepLR:get_lr()
  local lrs = group_lrs(self)
  local hits = 0
  for _, m in ipairs(self.milestones) do if m == self.last_epoch then hits = hits + 1 end end
  for i = 1, #lrs do lrs[i] = lrs[i] * self.gamma ^ hits end
  return lrs
end
M.MultiStepLR = setmetatable({}, {__call = function(_, opt, opts)
  opts = check("MultiStepLR", opts, {milestones = "table", gamma = "number"})
  if not opts.milestones then argerror(2, "MultiStepLR", "option 'milestones' is required") end
  local self = new(MultiStepLR, opt, "MultiStepLR")
  self.milestones = table.move(opts.milestones, 1, #opts.milestones, 1, {})
  table.sort(self.milestones)
  self.gamma = opts.gamma or 0.1
  self:step()
  return self
end})

-- ExponentialLR(opt, {gamma=}): lr *= gamma every step.
local ExponentialLR = class("ExponentialLR")
function ExponentialLR:get_lr()
  local lrs = group_lrs(self)
  if self.last_epoch == 0 then return lrs end
  for i = 1, #lrs do lrs[i] = lrs[i] * self.gamma end
  return lrs
end
M.ExponentialLR = setmetatable({}, {__call = function(_, opt, opts)
  opts = check("ExponentialLR", opts, {gamma = "number"})
  if not opts.gamma then argerror(2, "ExponentialLR", "option 'gamma' is required") end
  local self = new(ExponentialLR, opt, "ExponentialLR")
  self.gamma = opts.gamma
  self:step()
  return self
end})

-- CosineAnnealingLR(opt, {T_max=, eta_min=0}).
local Cosine = class("CosineAnnealingLR")
function Cosine:get_lr()
  local lrs, t, T, eta = group_lrs(self), self.last_epoch, self.T_max, self.eta_min
  if t == 0 then return lrs end
  for i = 1, #lrs do
    if (t - 1 - T) % (2 * T) == 0 then
      lrs[i] = lrs[i] + (self.base_lrs[i] - eta) * (1 - math.cos(math.pi / T)) / 2
    else
      lrs[i] = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (lrs[i] - eta) + eta
    end
  end
  return lrs
end
M.CosineAnnealingLR = setmetatable({}, {__call = function(_, opt, opts)
  opts = check("CosineAnnealingLR", opts, {T_max = "integer", eta_min = "number"})
  if not opts.T_max or opts.T_max < 1 then argerror(2, "CosineAnnealingLR", "option 'T_max' (a positive integer) is required") end
  local self = new(Cosine, opt, "CosineAnnealingLR")
  self.T_max, self.eta_min = opts.T_max, opts.eta_min or 0
  self:step()
  return self
end})

-- LinearLR(opt, {start_factor=1/3, end_factor=1, total_iters=5}): the lr
-- grows linearly from start_factor * lr to end_factor * lr (warm-up).
local LinearLR = class("LinearLR")
function LinearLR:get_lr()
  local lrs, t = group_lrs(self), self.last_epoch
  local s, e, n = self.start_factor, self.end_factor, self.total_iters
  for i = 1, #lrs do
    if t == 0 then
      lrs[i] = lrs[i] * s
    elseif t <= n then
      lrs[i] = lrs[i] * (1 + (e - s) / (n * s + (t - 1) * (e - s)))
    end
  end
  return lrs
end
M.LinearLR = setmetatable({}, {__call = function(_, opt, opts)
  opts = check("LinearLR", opts, {start_factor = "number", end_factor = "number", total_iters = "integer"})
  local self = new(LinearLR, opt, "LinearLR")
  self.start_factor, self.end_factor = opts.start_factor or 1 / 3, opts.end_factor or 1
  self.total_iters = opts.total_iters or 5
  if not (self.start_factor > 0 and self.start_factor <= 1) then
    argerror(2, "LinearLR", "option 'start_factor' must be in (0, 1]")
  end
  self:step()
  return self
end})

-- OneCycleLR(opt, {max_lr=, total_steps= | epochs= and steps_per_epoch=,
-- pct_start=0.3, anneal_strategy="cos", div_factor=25, final_div_factor=1e4,
-- three_phase=false, cycle_momentum=true, base_momentum=0.85,
-- max_momentum=0.95}): stepped once per batch.
local OneCycle = class("OneCycleLR")
local function anneal(strategy, start, stop, pct)
  if strategy == "cos" then return stop + (start - stop) / 2 * (math.cos(math.pi * pct) + 1) end
  return (stop - start) * pct + start
end
function OneCycle:get_lr()
  local t = self.last_epoch
  if t > self.total_steps then
    error(string.format("OneCycleLR: stepped %d times, more than total_steps = %d", t, self.total_steps), 3)
  end
  local lrs = {}
  for i, g in ipairs(self.optimizer.param_groups) do
    local start_step = 0
    for k, phase in ipairs(self.phases) do
      local end_step = phase.end_step
      if t <= end_step or k == #self.phases then
        local pct = (t - start_step) / (end_step - start_step)
        lrs[i] = anneal(self.anneal_strategy, self.group_values[i][phase.start_lr],
                        self.group_values[i][phase.end_lr], pct)
        if self.cycle_momentum then
          local m = anneal(self.anneal_strategy, self.group_values[i][phase.start_momentum],
                           self.group_values[i][phase.end_momentum], pct)
          if type(g.betas) == "table" then g.betas[1] = m else g.momentum = m end
        end
        break
      end
      start_step = end_step
    end
  end
  return lrs
end
M.OneCycleLR = setmetatable({}, {__call = function(_, opt, opts)
  opts = check("OneCycleLR", opts, {max_lr = "number", total_steps = "integer", epochs = "integer",
    steps_per_epoch = "integer", pct_start = "number", anneal_strategy = "string", div_factor = "number",
    final_div_factor = "number", three_phase = "boolean", cycle_momentum = "boolean",
    base_momentum = "number", max_momentum = "number"})
  if not opts.max_lr then argerror(2, "OneCycleLR", "option 'max_lr' is required") end
  local total = opts.total_steps
  if not total then
    if not (opts.epochs and opts.steps_per_epoch) then
      argerror(2, "OneCycleLR", "give 'total_steps', or 'epochs' and 'steps_per_epoch'")
    end
    total = opts.epochs * opts.steps_per_epoch
  end
  if total < 1 then argerror(2, "OneCycleLR", "total_steps must be positive") end
  local strategy = opts.anneal_strategy or "cos"
  if strategy ~= "cos" and strategy ~= "linear" then
    argerror(2, "OneCycleLR", "option 'anneal_strategy' must be \"cos\" or \"linear\"")
  end
  local self = new(OneCycle, opt, "OneCycleLR")
  local pct = opts.pct_start or 0.3
  self.total_steps, self.anneal_strategy = total, strategy
  if opts.three_phase then
    self.phases = {
      {end_step = pct * total - 1, start_lr = "initial_lr", end_lr = "max_lr", start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = 2 * pct * total - 2, start_lr = "max_lr", end_lr = "initial_lr", start_momentum = "base_momentum", end_momentum = "max_momentum"},
      {end_step = total - 1, start_lr = "initial_lr", end_lr = "min_lr", start_momentum = "max_momentum", end_momentum = "max_momentum"},
    }
  else
    self.phases = {
      {end_step = pct * total - 1, start_lr = "initial_lr", end_lr = "max_lr", start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = total - 1, start_lr = "max_lr", end_lr = "min_lr", start_momentum = "base_momentum", end_momentum = "max_momentum"},
    }
  end
  self.cycle_momentum = opts.cycle_momentum ~= false
  local div, fdiv = opts.div_factor or 25, opts.final_div_factor or 1e4
  self.group_values = {}
  for i, g in ipairs(opt.param_groups) do
    local initial = opts.max_lr / div
    g.initial_lr = initial
    self.base_lrs[i] = initial
    local v = {initial_lr = initial, max_lr = opts.max_lr, min_lr = initial / fdiv,
               base_momentum = opts.base_momentum or 0.85, max_momentum = opts.max_momentum or 0.95}
    if self.cycle_momentum then
      if type(g.betas) ~= "table" and (g.momentum == nil) then
        argerror(1, "OneCycleLR", "optimizer without momentum cannot cycle momentum (use cycle_momentum = false)")
      end
      if type(g.betas) == "table" then g.betas[1] = v.max_momentum else g.momentum = v.max_momentum end
    end
    self.group_values[i] = v
  end
  self:step()
  return self
end})

-- ReduceLROnPlateau(opt, {mode="min", factor=0.1, patience=10,
-- threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8}):
-- step(metric) lowers the lr when the metric stops improving.
local Plateau = class("ReduceLROnPlateau")
function Plateau:is_better(a, best)
  local rel = self.threshold_mode == "rel"
  if self.mode == "min" then
    return rel and a < best * (1 - self.threshold) or (not rel and a < best - self.threshold)
  end
  return rel and a > best * (1 + self.threshold) or (not rel and a > best + self.threshold)
end
function Plateau:step(metric)
  if type(metric) ~= "number" then
    error("bad argument #1 to 'step' (ReduceLROnPlateau needs the monitored metric, got " .. type(metric) .. ")", 2)
  end
  self.last_epoch = self.last_epoch + 1
  if self:is_better(metric, self.best) then
    self.best, self.num_bad_epochs = metric, 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0
  end
  if self.num_bad_epochs > self.patience then
    for i, g in ipairs(self.optimizer.param_groups) do
      local new_lr = math.max(g.lr * self.factor, self.min_lrs[i])
      if g.lr - new_lr > self.eps then g.lr = new_lr end
    end
    self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
  end
  self._last_lr = group_lrs(self)
end
M.ReduceLROnPlateau = setmetatable({}, {__call = function(_, opt, opts)
  opts = check("ReduceLROnPlateau", opts, {mode = "string", factor = "number", patience = "integer",
    threshold = "number", threshold_mode = "string", cooldown = "integer", min_lr = "number", eps = "number"})
  local self = new(Plateau, opt, "ReduceLROnPlateau")
  self.mode = opts.mode or "min"
  if self.mode ~= "min" and self.mode ~= "max" then argerror(2, "ReduceLROnPlateau", "option 'mode' must be \"min\" or \"max\"") end
  self.factor = opts.factor or 0.1
  if self.factor >= 1 then argerror(2, "ReduceLROnPlateau", "option 'factor' must be < 1") end
  self.patience, self.threshold = opts.patience or 10, opts.threshold or 1e-4
  self.threshold_mode = opts.threshold_mode or "rel"
  self.cooldown, self.eps = opts.cooldown or 0, opts.eps or 1e-8
  self.min_lrs = {}
  for i = 1, #opt.param_groups do self.min_lrs[i] = opts.min_lr or 0 end
  self.best = self.mode == "min" and math.huge or -math.huge
  self.num_bad_epochs, self.cooldown_counter, self.last_epoch = 0, 0, 0
  self._last_lr = group_lrs(self)
  return self
end})

return M
