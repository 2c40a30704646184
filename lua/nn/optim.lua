-- nn.optim: optimizers with torch.optim's formulas, defaults and state.
--
-- An optimizer holds parameter groups (each with its own hyperparameters)
-- and per-parameter state (step count and buffers, as tensors).  The update
-- of one parameter runs in C (core.optim.*_step).  `opt.lr` reads the first
-- group's learning rate and writes every group's.
local _, core = ...
local step_fns = core.optim

local optim = {}

local function argerror(n, fname, msg, level)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), (level or 2) + 1)
end

local Optimizer = {}

-- opt.lr reads the first group's learning rate; other keys are methods.
Optimizer.__index = function(t, k)
  if k == "lr" then return rawget(t, "param_groups")[1].lr end
  return rawget(getmetatable(t), k) or Optimizer[k]
end

-- opt.lr = v sets every group's learning rate.
Optimizer.__newindex = function(t, k, v)
  if k == "lr" then
    if type(v) ~= "number" or v < 0 then
      error("lr must be a non-negative number, got " .. tostring(v), 2)
    end
    for _, g in ipairs(rawget(t, "param_groups")) do g.lr = v end
    return
  end
  rawset(t, k, v)
end

Optimizer.__tostring = function(t)
  local mt = getmetatable(t)
  local lines = {mt.__name .. " ("}
  for i, g in ipairs(t.param_groups) do
    lines[#lines + 1] = "Parameter Group " .. (i - 1)
    local keys = {}
    for k in pairs(g) do if k ~= "params" then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = g[k]
      if type(v) == "table" then v = "(" .. table.concat(v, ", ") .. ")" end
      lines[#lines + 1] = "    " .. k .. ": " .. tostring(v)
    end
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

-- Checks one group's options against the defaults: unknown keys, types and
-- ranges.  `fname` names the optimizer in errors.
local function check_options(fname, spec, opts, argn)
  for k, v in pairs(opts) do
    if k ~= "params" then
      local s = spec.defaults[k]
      if s == nil and not spec.required[k] then
        argerror(argn, fname, "unknown option '" .. tostring(k) .. "'", 4)
      end
      local want = spec.types[k]
      if want == "number" and type(v) ~= "number" then
        argerror(argn, fname, "option '" .. k .. "' must be a number, got " .. type(v), 4)
      elseif want == "boolean" and type(v) ~= "boolean" then
        argerror(argn, fname, "option '" .. k .. "' must be a boolean, got " .. type(v), 4)
      elseif want == "betas" and (type(v) ~= "table" or type(v[1]) ~= "number" or type(v[2]) ~= "number") then
        argerror(argn, fname, "option 'betas' must be a pair {beta1, beta2} of numbers", 4)
      end
    end
  end
end

-- Makes an optimizer class.  spec: name, defaults (option -> default),
-- types (option -> "number" | "boolean" | "betas"), required (set),
-- validate(group) -> error message or nil, state(p, group) -> fresh state,
-- update(p, group, state).
local function define(spec)
  local cls = {}
  for k, v in pairs(Optimizer) do cls[k] = v end
  cls.__name = spec.name
  spec.required = spec.required or {}

  -- Class(params, opts): params is an array of parameter tensors or of
  -- groups {params = {...}, lr = ..., ...} overriding opts for their
  -- tensors.
  local function new(params, opts)
    local fname = spec.name
    if type(params) ~= "table" then
      argerror(1, fname, "table of parameters expected, got " .. type(params), 3)
    end
    if opts ~= nil and type(opts) ~= "table" then
      argerror(2, fname, "options table expected, got " .. type(opts), 3)
    end
    opts = opts or {}
    check_options(fname, spec, opts, 2)
    if #params == 0 then
      argerror(1, fname, "optimizer got an empty parameter list", 3)
    end
    local groups = {}
    if core.is_tensor(params[1]) then
      groups[1] = {params = params}
    else
      for i, g in ipairs(params) do
        if type(g) ~= "table" or type(g.params) ~= "table" then
          argerror(1, fname, "element " .. i .. " must be a tensor or a group {params = {...}, ...}", 3)
        end
        check_options(fname, spec, g, 1)
        groups[i] = g
      end
    end
    local seen = {}
    local self = {param_groups = {}, state = {}}
    for gi, g in ipairs(groups) do
      local group = {params = {}}
      for k, v in pairs(spec.defaults) do group[k] = v end
      for k, v in pairs(opts) do group[k] = v end
      for k, v in pairs(g) do if k ~= "params" then group[k] = v end end
      for k in pairs(spec.required) do
        if group[k] == nil then
          argerror(2, fname, "option '" .. k .. "' is required", 3)
        end
      end
      if type(group.betas) == "table" then group.betas = {group.betas[1], group.betas[2]} end
      local msg = spec.validate(group)
      if msg then argerror(2, fname, msg, 3) end
      for i, p in ipairs(g.params) do
        if not core.is_tensor(p) then
          argerror(1, fname, string.format("parameter %d of group %d is a %s, not a tensor", i, gi, type(p)), 3)
        end
        if p:grad() == nil then
          argerror(1, fname, string.format("parameter %d of group %d has no gradient (use t:requires_grad_())", i, gi), 3)
        end
        if seen[p] then
          argerror(1, fname, "some parameters appear more than once", 3)
        end
        seen[p] = true
        group.params[i] = p
      end
      self.param_groups[gi] = group
    end
    return setmetatable(self, cls)
  end

  -- step(): updates every parameter that requires a gradient.
  function cls:step()
    local state = rawget(self, "state")
    for _, g in ipairs(rawget(self, "param_groups")) do
      for _, p in ipairs(g.params) do
        if p:requires_grad() then
          local s = state[p]
          if not s then
            s = spec.state(p, g)
            s.step = 0
            state[p] = s
          end
          s.step = s.step + 1
          spec.update(p, g, s)
        end
      end
    end
  end

  -- zero_grad(): zeroes every parameter's gradient.
  function cls:zero_grad()
    for _, g in ipairs(rawget(self, "param_groups")) do
      for _, p in ipairs(g.params) do
        local gr = p:grad()
        if gr then gr:zero_() end
      end
    end
  end

  -- state_dict() -> {state = {[i] = {step=, buffers...}}, param_groups =
  -- {{hyperparameters..., params = {i, ...}}}}, parameters numbered from 1
  -- in group order; tensors are copies.
  function cls:state_dict()
    local out = {state = {}, param_groups = {}}
    local index = 0
    for gi, g in ipairs(rawget(self, "param_groups")) do
      local og = {params = {}}
      for k, v in pairs(g) do
        if k ~= "params" then
          og[k] = type(v) == "table" and {v[1], v[2]} or v
        end
      end
      for _, p in ipairs(g.params) do
        index = index + 1
        og.params[#og.params + 1] = index
        local s = rawget(self, "state")[p]
        if s then
          local os = {}
          for k, v in pairs(s) do
            os[k] = core.is_tensor(v) and v:clone() or v
          end
          out.state[index] = os
        end
      end
      out.param_groups[gi] = og
    end
    return out
  end

  -- load_state_dict(sd): restores hyperparameters and state saved by
  -- state_dict() of an optimizer over parameters of the same shapes.
  function cls:load_state_dict(sd)
    local fname = "load_state_dict"
    if type(sd) ~= "table" or type(sd.param_groups) ~= "table" or type(sd.state) ~= "table" then
      argerror(1, fname, "optimizer state_dict with 'state' and 'param_groups' expected", 2)
    end
    local groups = rawget(self, "param_groups")
    if #sd.param_groups ~= #groups then
      error(string.format("%s: loaded state has %d parameter groups, the optimizer has %d",
                          fname, #sd.param_groups, #groups), 2)
    end
    local params = {}
    for gi, g in ipairs(groups) do
      if #sd.param_groups[gi].params ~= #g.params then
        error(string.format("%s: group %d has %d parameters in the loaded state, %d in the optimizer",
                            fname, gi, #sd.param_groups[gi].params, #g.params), 2)
      end
      for _, p in ipairs(g.params) do params[#params + 1] = p end
    end
    local newstate = {}
    for i, s in pairs(sd.state) do
      local p = params[i]
      if not p then error(fname .. ": state for unknown parameter " .. tostring(i), 2) end
      local ns = {}
      for k, v in pairs(s) do
        if core.is_tensor(v) then
          if v:numel() ~= p:numel() then
            error(string.format("%s: state '%s' of parameter %d has %d elements, the parameter %d",
                                fname, k, i, v:numel(), p:numel()), 2)
          end
          ns[k] = v:clone():reshape(p:shape())
        else
          ns[k] = v
        end
      end
      newstate[p] = ns
    end
    for gi, g in ipairs(groups) do
      for k, v in pairs(sd.param_groups[gi]) do
        if k ~= "params" then g[k] = type(v) == "table" and {v[1], v[2]} or v end
      end
    end
    rawset(self, "state", newstate)
  end

  return setmetatable(cls, {__call = function(_, ...) return new(...) end,
                            __index = Optimizer})
end

local function zeros_like(p) return core.zeros(p:shape()) end

local function nonneg(g, k)
  if g[k] < 0 then return "invalid " .. k .. " value: " .. g[k] end
end

optim.SGD = define{
  name = "SGD",
  defaults = {momentum = 0, dampening = 0, weight_decay = 0, nesterov = false},
  types = {lr = "number", momentum = "number", dampening = "number",
           weight_decay = "number", nesterov = "boolean"},
  required = {lr = true},
  validate = function(g)
    local m = nonneg(g, "lr") or nonneg(g, "momentum") or nonneg(g, "weight_decay")
    if m then return m end
    if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
      return "Nesterov momentum requires a momentum and zero dampening"
    end
  end,
  state = function(p, g)
    return {momentum_buffer = g.momentum ~= 0 and zeros_like(p) or nil}
  end,
  update = function(p, g, s)
    if g.momentum ~= 0 and not s.momentum_buffer then s.momentum_buffer = zeros_like(p) end
    step_fns.sgd_step(p, s.momentum_buffer, s.step, g.lr, g.momentum, g.dampening,
                      g.weight_decay, g.nesterov)
  end,
}

optim.Adagrad = define{
  name = "Adagrad",
  defaults = {lr = 1e-2, lr_decay = 0, weight_decay = 0, eps = 1e-10,
              initial_accumulator_value = 0},
  types = {lr = "number", lr_decay = "number", weight_decay = "number", eps = "number",
           initial_accumulator_value = "number"},
  validate = function(g)
    return nonneg(g, "lr") or nonneg(g, "lr_decay") or nonneg(g, "weight_decay") or
           nonneg(g, "eps") or nonneg(g, "initial_accumulator_value")
  end,
  state = function(p, g)
    return {sum = core.full(p:shape(), g.initial_accumulator_value)}
  end,
  update = function(p, g, s)
    step_fns.adagrad_step(p, s.sum, s.step, g.lr, g.lr_decay, g.weight_decay, g.eps)
  end,
}

optim.RMSprop = define{
  name = "RMSprop",
  defaults = {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
              centered = false},
  types = {lr = "number", alpha = "number", eps = "number", weight_decay = "number",
           momentum = "number", centered = "boolean"},
  validate = function(g)
    return nonneg(g, "lr") or nonneg(g, "alpha") or nonneg(g, "eps") or
           nonneg(g, "weight_decay") or nonneg(g, "momentum")
  end,
  state = function(p, g)
    return {square_avg = zeros_like(p),
            grad_avg = g.centered and zeros_like(p) or nil,
            momentum_buffer = g.momentum > 0 and zeros_like(p) or nil}
  end,
  update = function(p, g, s)
    if g.centered and not s.grad_avg then s.grad_avg = zeros_like(p) end
    if g.momentum > 0 and not s.momentum_buffer then s.momentum_buffer = zeros_like(p) end
    step_fns.rmsprop_step(p, s.square_avg, s.grad_avg, s.momentum_buffer, s.step, g.lr,
                          g.alpha, g.eps, g.weight_decay, g.momentum, g.centered)
  end,
}

local function adam_spec(name, wd, decoupled)
  return {
    name = name,
    defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = wd, amsgrad = false},
    types = {lr = "number", betas = "betas", eps = "number", weight_decay = "number",
             amsgrad = "boolean"},
    validate = function(g)
      local m = nonneg(g, "lr") or nonneg(g, "eps") or nonneg(g, "weight_decay")
      if m then return m end
      for i = 1, 2 do
        if not (g.betas[i] >= 0 and g.betas[i] < 1) then
          return "invalid beta parameter at index " .. (i - 1) .. ": " .. g.betas[i]
        end
      end
    end,
    state = function(p, g)
      return {exp_avg = zeros_like(p), exp_avg_sq = zeros_like(p),
              max_exp_avg_sq = g.amsgrad and zeros_like(p) or nil}
    end,
    update = function(p, g, s)
      if g.amsgrad and not s.max_exp_avg_sq then s.max_exp_avg_sq = zeros_like(p) end
      step_fns.adam_step(p, s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, s.step, g.lr,
                         g.betas[1], g.betas[2], g.eps, g.weight_decay, g.amsgrad, decoupled)
    end,
  }
end

optim.Adam = define(adam_spec("Adam", 0, false))
optim.AdamW = define(adam_spec("AdamW", 1e-2, true))

return optim
