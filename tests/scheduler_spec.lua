-- Learning-rate schedulers against torch.optim.lr_scheduler's values
-- (tests/ref/sched.lua, made by tools/gen_sched_ref.py), their state, and
-- their errors.
local nn = require "nn"
local ref = require "ref.sched"
local S = nn.optim.lr_scheduler

local function make_opt(kind, lr)
  local p = nn.zeros(2):requires_grad_()
  if kind == "adam" then return nn.optim.Adam({p}, {lr = lr}) end
  return nn.optim.SGD({p}, {lr = lr, momentum = 0.9})
end

local function close(a, b) return math.abs(a - b) <= 1e-12 * math.max(1, math.abs(b)) end

describe("lr schedulers match torch", function()
  local names = {}
  for k in pairs(ref) do names[#names + 1] = k end
  table.sort(names)
  for _, name in ipairs(names) do
    local c = ref[name]
    it(name, function()
      local opt = make_opt(c.optim, c.base_lr)
      local sched = S[c.class](opt, c.opts)
      local g = opt.param_groups[1]
      local function momentum() return g.betas and g.betas[1] or g.momentum end
      assert.is_true(close(opt.lr, c.lrs[1]), string.format("step 0: %.17g vs %.17g", opt.lr, c.lrs[1]))
      assert.is_true(close(momentum(), c.momenta[1]))
      for i = 2, #c.lrs do
        opt:step()
        if c.class == "ReduceLROnPlateau" then sched:step(c.metrics[i - 1]) else sched:step() end
        assert.is_true(close(opt.lr, c.lrs[i]), string.format("step %d: lr %.17g, torch %.17g", i - 1, opt.lr, c.lrs[i]))
        assert.is_true(close(momentum(), c.momenta[i]), string.format("step %d: momentum", i - 1))
        assert.is_true(close(sched:get_last_lr()[1], opt.lr))
      end
    end)
  end
end)

describe("lr scheduler state", function()
  it("resumes from state_dict to the same values", function()
    local o1 = make_opt("sgd", 0.1)
    local s1 = S.CosineAnnealingLR(o1, {T_max = 7})
    for _ = 1, 3 do s1:step() end
    local state = s1:state_dict()
    local o2 = make_opt("sgd", 0.1)
    local s2 = S.CosineAnnealingLR(o2, {T_max = 7})
    s2:load_state_dict(state)
    o2.lr = o1.lr
    for _ = 1, 4 do s1:step(); s2:step() end
    assert.are.equal(o1.lr, o2.lr)
  end)

  it("refuses another scheduler's state", function()
    local s = S.StepLR(make_opt("sgd", 0.1), {step_size = 2})
    local e = S.ExponentialLR(make_opt("sgd", 0.1), {gamma = 0.5})
    assert.has_error(function() s:load_state_dict(e:state_dict()) end,
                     "load_state_dict: state of a ExponentialLR given to a StepLR")
  end)
end)

describe("lr scheduler errors", function()
  local opt = make_opt("sgd", 0.1)
  local cases = {
    {function() S.StepLR(opt, {}) end, "bad argument #2 to 'StepLR' (option 'step_size' (a positive integer) is required)"},
    {function() S.StepLR(opt, {step_size = 2, gama = 0.1}) end, "bad argument #2 to 'StepLR' (unknown option 'gama')"},
    {function() S.StepLR(opt, {step_size = 1.5}) end, "bad argument #2 to 'StepLR' (option 'step_size' must be an integer, got number)"},
    {function() S.StepLR(nil, {step_size = 2}) end, "bad argument #1 to 'StepLR' (optimizer expected, got nil)"},
    {function() S.OneCycleLR(opt, {max_lr = 1}) end, "bad argument #2 to 'OneCycleLR' (give 'total_steps', or 'epochs' and 'steps_per_epoch')"},
    {function() S.ReduceLROnPlateau(opt, {mode = "mid"}) end, "bad argument #2 to 'ReduceLROnPlateau' (option 'mode' must be \"min\" or \"max\")"},
    {function() S.ReduceLROnPlateau(opt):step() end, "bad argument #1 to 'step' (ReduceLROnPlateau needs the monitored metric, got nil)"},
  }
  for i, c in ipairs(cases) do
    it("case " .. i, function() assert.has_error(c[1], c[2]) end)
  end

  it("OneCycleLR refuses to step past total_steps", function()
    local s = S.OneCycleLR(make_opt("sgd", 0.1), {max_lr = 1, total_steps = 2})
    s:step(); s:step()
    assert.has_error(function() s:step() end, "OneCycleLR: stepped 3 times, more than total_steps = 2")
  end)
end)
