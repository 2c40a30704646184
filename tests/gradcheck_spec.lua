-- Finite-difference gradient checks of every layer and loss of API.md,
-- through the Lua API only.
--
-- For a module m, input x and a fixed random projection r, the objective is
-- L(x, params) = sum(m:forward(x) * r) (computed in double from the float32
-- output); m:backward(x, r) must give dL/dx and accumulate dL/dp into every
-- p:grad().  For a loss, L is crit:forward(x, t) (summed over the entries for
-- reduction "none") and crit:backward(x, t) must give dL/dx.  Numerical
-- derivatives use the five-point stencil (central differences at steps h and
-- 2h, Richardson-extrapolated: truncation error O(h^4)), with h = 0.05 for
-- smooth cases and h = 0.01 for those with a kink or a pole nearby; the
-- perturbed values are read back from the float32 tensor so that rounding of
-- the perturbation itself does not count.
--
-- Criterion, per entry i of a gradient:
--     err_i = |a_i - n_i| / max(|a_i|, |n_i|, FLOOR * max_j |n_j|, ABS_FLOOR)
-- with a the analytic and n the numerical gradient; max_i err_i <= BOUND
-- (1e-2).  The floor (1% of the largest entry of that gradient, and at least
-- 1e-5) stops entries that are nearly zero from being held to a relative
-- precision that float32 differences cannot give: their absolute error is
-- about ulp(L) / h, around 1e-6.
--
-- Kinks are avoided by construction: ReLU/LeakyReLU/ELU inputs are at least
-- 0.1 from 0; max-pool inputs are distinct values 0.05 apart (perturbations
-- up to 2h = 0.02 cannot change an argmax); L1 inputs are at least 0.1 from
-- their target; BCE inputs lie in [0.2, 0.8].
local nn = require "nn"
local H = require "helpers"

local BOUND = 1e-2
local FLOOR = 1e-2
local ABS_FLOOR = 1e-5
local H_SMOOTH = 5e-2 -- step of smooth cases; 1e-2 next to a (kept away) kink

-- ---------------------------------------------------------------- inputs --
-- Each generator returns a nested table; all draw from nn's seeded RNG.

local function numel(shape)
  local n = 1
  for _, s in ipairs(shape) do
    n = n * s
  end
  return n
end

local function randn(shape, scale)
  local flat = H.flatten(nn.randn(shape))
  for i = 1, #flat do
    flat[i] = flat[i] * (scale or 1)
  end
  return H.nest(flat, shape)
end

local function uniform(shape, lo, hi)
  local flat = H.flatten(nn.rand(shape))
  for i = 1, #flat do
    flat[i] = lo + (hi - lo) * flat[i]
  end
  return H.nest(flat, shape)
end

-- Normal values pushed at least `margin` away from 0.
local function away(shape, margin)
  local flat = H.flatten(nn.randn(shape))
  for i = 1, #flat do
    flat[i] = flat[i] >= 0 and flat[i] + margin or flat[i] - margin
  end
  return H.nest(flat, shape)
end

-- A random permutation of evenly spaced values centred on 0.
local function distinct(shape, spacing)
  local n = numel(shape)
  local keys = H.flatten(nn.rand(n))
  local order = {}
  for i = 1, n do
    order[i] = i
  end
  table.sort(order, function(a, b) return keys[a] < keys[b] end)
  local flat = {}
  for rank, i in ipairs(order) do
    flat[i] = (rank - (n + 1) / 2) * spacing
  end
  return H.nest(flat, shape)
end

-- n class labels in 1..c, every class present when n >= c.
local function labels(n, c)
  local u = H.flatten(nn.rand(n))
  local t = {}
  for i = 1, n do
    t[i] = i <= c and i or math.floor(u[i] * c) + 1
  end
  return t
end

-- Adds noise to every parameter, so weights differ from their init and
-- batch norm's weight is not all ones.
local function perturb_params(m)
  for _, p in ipairs(m:parameters()) do
    p:add_(nn.tensor(randn(p:shape(), 0.3)))
  end
end

-- Random running statistics for batch norm in eval mode.
local function random_running_stats(m)
  perturb_params(m)
  local sd = m:state_dict()
  local c = sd.running_mean:numel()
  sd.running_mean:copy_(nn.tensor(randn({c}, 0.3)))
  sd.running_var:copy_(nn.tensor(uniform({c}, 0.5, 1.5)))
end

-- --------------------------------------------------------------- checking --

local function check(analytic, numeric, what)
  assert.are.equal(#numeric, #analytic, what .. ": gradient size")
  local scale = 0
  for i = 1, #numeric do
    scale = math.max(scale, math.abs(numeric[i]))
  end
  local floor = math.max(FLOOR * scale, ABS_FLOOR)
  local worst, at = 0, 1
  for i = 1, #numeric do
    local a, n = analytic[i], numeric[i]
    local e = math.abs(a - n) / math.max(math.abs(a), math.abs(n), floor)
    if e ~= e then
      e = math.huge
    end
    if e > worst then
      worst, at = e, i
    end
  end
  if worst > BOUND then
    error(("%s: max relative error %.3g > %.3g at entry %d (analytic %.6g, numeric %.6g)")
      :format(what, worst, BOUND, at, analytic[at], numeric[at]), 2)
  end
end

-- Numerical derivative of f with respect to every entry of tensor t: the
-- five-point stencil, i.e. Richardson extrapolation of central differences
-- at steps h and 2h, (4 D(h) - D(2h)) / 3, whose error is O(h^4).  Each
-- central difference divides by the perturbation actually stored in float32.
local function numeric_grad(t, f, h)
  local out = {}
  for k, idx in ipairs(H.indices(t:shape())) do
    local v = t:get(table.unpack(idx))
    local function at(d)
      t:set(v + d, table.unpack(idx))
      return t:get(table.unpack(idx)), f()
    end
    local vp1, fp1 = at(h)
    local vm1, fm1 = at(-h)
    local vp2, fp2 = at(2 * h)
    local vm2, fm2 = at(-2 * h)
    t:set(v, table.unpack(idx))
    local d1 = (fp1 - fm1) / (vp1 - vm1)
    local d2 = (fp2 - fm2) / (vp2 - vm2)
    out[k] = (4 * d1 - d2) / 3
  end
  return out
end

local function scalar(out)
  if type(out) == "number" then
    return out
  end
  return H.total(out)
end

-- Checks grad_input and every parameter gradient of one module case.  With
-- case.loss the objective is that loss of the output against case.target,
-- else the projection sum(y * r).
local function check_module(case, seed)
  nn.manual_seed(seed)
  local m = case.make()
  if case.setup then
    case.setup(m)
  end
  if case.eval then
    m:eval()
  end
  local x = nn.tensor(case.input())
  local h = case.h or H_SMOOTH
  local y = m:forward(x)
  local gy, f
  if case.loss then
    local crit = case.loss()
    local t = nn.tensor(case.target())
    gy = crit:backward(y, t)
    f = function() return scalar(crit:forward(m:forward(x), t)) end
  else
    local r = H.flatten(nn.tensor(uniform(y:shape(), -1, 1)))
    gy = nn.tensor(H.nest(r, y:shape()))
    f = function() return H.dot(m:forward(x), r) end
  end
  m:zero_grad()
  local gx = H.flatten(m:backward(x, gy))
  local params = m:parameters()
  local pgrads = {}
  for i, p in ipairs(params) do
    pgrads[i] = H.flatten(p:grad())
  end
  check(gx, numeric_grad(x, f, h), "grad_input")
  for i, p in ipairs(params) do
    check(pgrads[i], numeric_grad(p, f, h), "grad of parameter " .. i)
  end
end

local function check_loss(case, seed)
  nn.manual_seed(seed)
  local crit = case.make()
  local xt, tt = case.input()
  local x, t = nn.tensor(xt), nn.tensor(tt)
  local a = H.flatten(crit:backward(x, t))
  local f = function() return scalar(crit:forward(x, t)) end
  check(a, numeric_grad(x, f, case.h or H_SMOOTH), "grad_input")
end

-- ----------------------------------------------------------------- layers --

local function from(gen, ...)
  local args = table.pack(...)
  return function() return gen(table.unpack(args, 1, args.n)) end
end

local layer_cases = {
  {name = "Linear", make = function() return nn.Linear(4, 3) end,
   input = from(randn, {3, 4})},
  {name = "Linear without bias", make = function() return nn.Linear(4, 3, {bias = false}) end,
   input = from(randn, {2, 4})},
  {name = "Conv2d", make = function() return nn.Conv2d(2, 3, 3) end,
   input = from(randn, {2, 2, 5, 5})},
  {name = "Conv2d rectangular kernel, stride 2, padding 1",
   make = function() return nn.Conv2d(2, 3, {3, 2}, {stride = 2, padding = 1}) end,
   input = from(randn, {2, 2, 6, 5})},
  {name = "Conv2d without bias", make = function() return nn.Conv2d(2, 2, 2, {bias = false}) end,
   input = from(randn, {1, 2, 4, 4})},
  {name = "MaxPool2d", make = function() return nn.MaxPool2d(2) end,
   input = from(distinct, {2, 2, 4, 4}, 0.05), h = 1e-2},
  {name = "MaxPool2d overlapping, padding 1",
   make = function() return nn.MaxPool2d(3, {stride = 2, padding = 1}) end,
   input = from(distinct, {1, 2, 5, 6}, 0.05), h = 1e-2},
  {name = "AvgPool2d", make = function() return nn.AvgPool2d(2) end,
   input = from(randn, {2, 2, 4, 5})},
  {name = "AvgPool2d overlapping, padding 1",
   make = function() return nn.AvgPool2d(3, {stride = 2, padding = 1}) end,
   input = from(randn, {1, 2, 5, 6})},
  {name = "AdaptiveAvgPool2d 5x7 -> 3x2", make = function() return nn.AdaptiveAvgPool2d({3, 2}) end,
   input = from(randn, {2, 2, 5, 7})},
  {name = "AdaptiveAvgPool2d 5x5 -> 2", make = function() return nn.AdaptiveAvgPool2d(2) end,
   input = from(randn, {1, 2, 5, 5})},
  {name = "BatchNorm2d train", make = function() return nn.BatchNorm2d(2) end,
   setup = perturb_params, input = from(randn, {3, 2, 3, 3})},
  {name = "BatchNorm2d train, eps and momentum",
   make = function() return nn.BatchNorm2d(3, {eps = 1e-3, momentum = 0.3}) end,
   setup = perturb_params, input = from(randn, {2, 3, 2, 3})},
  {name = "BatchNorm2d eval", make = function() return nn.BatchNorm2d(2) end,
   setup = random_running_stats, eval = true, input = from(randn, {2, 2, 3, 3})},
  {name = "BatchNorm1d train [N, C]", make = function() return nn.BatchNorm1d(4) end,
   setup = perturb_params, input = from(randn, {6, 4})},
  {name = "BatchNorm1d train [N, C, L]", make = function() return nn.BatchNorm1d(3) end,
   setup = perturb_params, input = from(randn, {3, 3, 4})},
  {name = "BatchNorm1d eval [N, C]", make = function() return nn.BatchNorm1d(4) end,
   setup = random_running_stats, eval = true, input = from(randn, {3, 4})},
  {name = "BatchNorm1d eval [N, C, L]", make = function() return nn.BatchNorm1d(3) end,
   setup = random_running_stats, eval = true, input = from(randn, {2, 3, 4})},
  {name = "Dropout p=0 train", make = function() return nn.Dropout(0) end,
   input = from(randn, {3, 4})},
  {name = "Dropout p=0.5 eval", make = function() return nn.Dropout(0.5) end, eval = true,
   input = from(randn, {3, 4})},
  {name = "Flatten", make = function() return nn.Flatten() end,
   input = from(randn, {2, 3, 2, 2})},
  {name = "ReLU", make = function() return nn.ReLU() end,
   input = from(away, {3, 5}, 0.1), h = 1e-2},
  {name = "LeakyReLU(0.2)", make = function() return nn.LeakyReLU(0.2) end,
   input = from(away, {3, 5}, 0.1), h = 1e-2},
  {name = "Sigmoid", make = function() return nn.Sigmoid() end,
   input = from(randn, {3, 5}, 2)},
  {name = "Tanh", make = function() return nn.Tanh() end,
   input = from(randn, {3, 5})},
  {name = "ELU", make = function() return nn.ELU() end,
   input = from(away, {3, 5}, 0.1), h = 1e-2},
  {name = "GELU", make = function() return nn.GELU() end,
   input = from(randn, {3, 5}, 2)},
  {name = "Softmax [N, C]", make = function() return nn.Softmax() end,
   input = from(randn, {3, 5})},
  {name = "Softmax [N, T, C]", make = function() return nn.Softmax() end,
   input = from(randn, {2, 3, 4})},
  {name = "LogSoftmax [N, C]", make = function() return nn.LogSoftmax() end,
   input = from(randn, {3, 5})},
  {name = "LogSoftmax [N, T, C]", make = function() return nn.LogSoftmax() end,
   input = from(randn, {2, 3, 4})},
  {name = "Sequential CNN (conv, batch norm train, pooling, linear, GELU, dropout 0)",
   make = function()
     return nn.Sequential{
       nn.Conv2d(2, 3, 3, {padding = 1}), nn.Tanh(), nn.BatchNorm2d(3), nn.AvgPool2d(2),
       nn.Flatten(), nn.Linear(12, 5), nn.GELU(), nn.Dropout(0), nn.Linear(5, 3),
     }
   end,
   setup = perturb_params, input = from(randn, {2, 2, 4, 4})},
  {name = "Sequential with named children and nested Sequential",
   make = function()
     local s = nn.Sequential{}
     s:add("features", nn.Sequential{nn.Conv2d(1, 2, 3), nn.GELU(), nn.AdaptiveAvgPool2d({2, 1})})
     s:add("flatten", nn.Flatten())
     s:add("classifier", nn.Sequential{nn.Linear(4, 3), nn.Tanh()})
     return s
   end,
   setup = perturb_params, input = from(randn, {2, 1, 5, 4})},
  {name = "Sequential MLP + CrossEntropyLoss (weight, label smoothing)",
   make = function()
     return nn.Sequential{nn.Linear(5, 6), nn.Tanh(), nn.BatchNorm1d(6), nn.Linear(6, 4)}
   end,
   loss = function()
     return nn.CrossEntropyLoss{weight = nn.tensor{0.5, 1.0, 1.5, 2.0}, label_smoothing = 0.1}
   end,
   input = from(randn, {5, 5}), target = function() return labels(5, 4) end,
   h = 2e-2}, -- batch norm over 5 samples is strongly curved
}

describe("gradient check of layers", function()
  for i, case in ipairs(layer_cases) do
    it(case.name, function()
      check_module(case, 1000 + i)
    end)
  end
end)

-- ----------------------------------------------------------------- losses --

-- Logits [n, c] and 1-based labels.
local function class_input(n, c)
  return function() return randn({n, c}), labels(n, c) end
end

-- Log-probabilities [n, c] (any values work: NLL is linear) and labels.
local function logprob_input(n, c)
  return function() return randn({n, c}), labels(n, c) end
end

local function regression_input(shape)
  return function() return randn(shape), randn(shape) end
end

-- Input at least 0.1 away from the target (L1 has a kink at equality).
local function l1_input(shape)
  return function()
    local t = randn(shape)
    local d = H.flatten(away(shape, 0.1))
    local tf = H.flatten(t)
    for i = 1, #d do
      d[i] = d[i] + tf[i]
    end
    return H.nest(d, shape), t
  end
end

-- Probabilities in [0.2, 0.8]; targets half hard (0/1), half soft.
local function prob_input(shape)
  return function()
    local x = uniform(shape, 0.2, 0.8)
    local t = H.flatten(nn.rand(shape))
    for i = 1, #t, 2 do
      t[i] = t[i] < 0.5 and 0 or 1
    end
    return x, H.nest(t, shape)
  end
end

local function logit_input(shape)
  return function()
    local _, t = prob_input(shape)()
    return randn(shape, 2), t
  end
end

local W4 = function() return nn.tensor{0.5, 1.5, 1.0, 2.0} end

local loss_cases = {
  {name = "CrossEntropyLoss", make = function() return nn.CrossEntropyLoss{} end,
   input = class_input(6, 4)},
  {name = "CrossEntropyLoss weight", make = function() return nn.CrossEntropyLoss{weight = W4()} end,
   input = class_input(6, 4)},
  {name = "CrossEntropyLoss label_smoothing",
   make = function() return nn.CrossEntropyLoss{label_smoothing = 0.2} end,
   input = class_input(6, 4)},
  {name = "CrossEntropyLoss weight + label_smoothing",
   make = function() return nn.CrossEntropyLoss{weight = W4(), label_smoothing = 0.1} end,
   input = class_input(6, 4)},
  {name = "CrossEntropyLoss weight + label_smoothing, sum",
   make = function()
     return nn.CrossEntropyLoss{weight = W4(), label_smoothing = 0.1, reduction = "sum"}
   end,
   input = class_input(6, 4)},
  {name = "CrossEntropyLoss weight + label_smoothing, none",
   make = function()
     return nn.CrossEntropyLoss{weight = W4(), label_smoothing = 0.1, reduction = "none"}
   end,
   input = class_input(6, 4)},
  {name = "NLLLoss", make = function() return nn.NLLLoss{} end, input = logprob_input(6, 4)},
  {name = "NLLLoss weight", make = function() return nn.NLLLoss{weight = W4()} end,
   input = logprob_input(6, 4)},
  {name = "NLLLoss weight, sum",
   make = function() return nn.NLLLoss{weight = W4(), reduction = "sum"} end,
   input = logprob_input(6, 4)},
  {name = "NLLLoss weight, none",
   make = function() return nn.NLLLoss{weight = W4(), reduction = "none"} end,
   input = logprob_input(6, 4)},
}
for _, red in ipairs{"mean", "sum", "none"} do
  local tail = ", " .. red
  local list = {
    {name = "MSELoss" .. tail, make = function() return nn.MSELoss{reduction = red} end,
     input = regression_input({3, 4})},
    {name = "L1Loss" .. tail, make = function() return nn.L1Loss{reduction = red} end,
     input = l1_input({3, 4}), h = 1e-2},
    {name = "BCELoss" .. tail, make = function() return nn.BCELoss{reduction = red} end,
     input = prob_input({3, 4}), h = 1e-2},
    {name = "BCEWithLogitsLoss" .. tail,
     make = function() return nn.BCEWithLogitsLoss{reduction = red} end,
     input = logit_input({3, 4})},
  }
  for _, c in ipairs(list) do
    loss_cases[#loss_cases + 1] = c
  end
end
loss_cases[#loss_cases + 1] = {name = "BCELoss [N, 1, H, W]",
  make = function() return nn.BCELoss{} end, input = prob_input({2, 1, 2, 3}), h = 1e-2}

describe("gradient check of losses", function()
  for i, case in ipairs(loss_cases) do
    it(case.name, function()
      check_loss(case, 2000 + i)
    end)
  end
end)
