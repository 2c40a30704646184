-- Parity with PyTorch 1.13: every layer, loss and optimizer of API.md is run
-- on the inputs dumped by tools/gen_reference.py (tests/ref/*.lua) and its
-- outputs, gradients, buffers and parameter updates are compared with
-- PyTorch's.  Error criterion (helpers.max_rel_err): the largest absolute
-- difference over a tensor divided by the largest magnitude of the reference
-- tensor, at most TOL.
local nn = require "nn"
local H = require "helpers"

local TOL = 1e-4

local LAYERS = H.load_ref("layers")
local LOSSES = H.load_ref("losses")
local OPTIM = H.load_ref("optim")

-- One constructor per case of tests/ref/layers.lua, written against API.md.
local layer_ctors = {
  linear = function() return nn.Linear(4, 3) end,
  linear_nobias = function() return nn.Linear(4, 3, {bias = false}) end,
  conv2d = function() return nn.Conv2d(2, 3, 3) end,
  conv2d_rect_stride_pad = function()
    return nn.Conv2d(2, 3, {3, 2}, {stride = 2, padding = 1})
  end,
  conv2d_nobias = function() return nn.Conv2d(2, 4, 2, {bias = false}) end,
  conv2d_pad2_1x1_in = function() return nn.Conv2d(1, 2, 3, {padding = 2}) end,
  maxpool2d = function() return nn.MaxPool2d(2) end,
  maxpool2d_overlap_pad = function() return nn.MaxPool2d(3, {stride = 2, padding = 1}) end,
  avgpool2d = function() return nn.AvgPool2d(2) end,
  avgpool2d_pad = function() return nn.AvgPool2d(3, {stride = 2, padding = 1}) end,
  adaptiveavgpool2d_5x7_to_3x2 = function() return nn.AdaptiveAvgPool2d({3, 2}) end,
  adaptiveavgpool2d_5x5_to_2 = function() return nn.AdaptiveAvgPool2d(2) end,
  adaptiveavgpool2d_global = function() return nn.AdaptiveAvgPool2d(1) end,
  batchnorm2d_train = function() return nn.BatchNorm2d(3) end,
  batchnorm2d_train_opts = function() return nn.BatchNorm2d(2, {eps = 1e-3, momentum = 0.3}) end,
  batchnorm2d_eval = function() return nn.BatchNorm2d(3) end,
  batchnorm1d_train_2d = function() return nn.BatchNorm1d(4) end,
  batchnorm1d_train_3d = function() return nn.BatchNorm1d(3) end,
  batchnorm1d_eval_2d = function() return nn.BatchNorm1d(4) end,
  batchnorm1d_eval_3d = function() return nn.BatchNorm1d(3) end,
  dropout_eval = function() return nn.Dropout(0.5) end,
  dropout_p0_train = function() return nn.Dropout(0) end,
  flatten = function() return nn.Flatten() end,
  relu = function() return nn.ReLU() end,
  relu_4d = function() return nn.ReLU() end,
  leakyrelu = function() return nn.LeakyReLU(0.2) end,
  sigmoid = function() return nn.Sigmoid() end,
  tanh = function() return nn.Tanh() end,
  elu = function() return nn.ELU() end,
  gelu = function() return nn.GELU() end,
  softmax = function() return nn.Softmax() end,
  softmax_3d = function() return nn.Softmax() end,
  logsoftmax = function() return nn.LogSoftmax() end,
  logsoftmax_3d = function() return nn.LogSoftmax() end,
  sequential = function()
    return nn.Sequential{
      nn.Conv2d(2, 3, 3, {padding = 1}), nn.Tanh(), nn.BatchNorm2d(3), nn.MaxPool2d(2),
      nn.ReLU(), nn.Flatten(), nn.Linear(12, 4),
    }
  end,
  sequential_named = function()
    local s = nn.Sequential{}
    s:add("features", nn.Sequential{nn.Conv2d(1, 2, 3), nn.Tanh()})
    s:add("flatten", nn.Flatten())
    s:add("classifier", nn.Sequential{nn.Linear(8, 3), nn.Sigmoid()})
    return s
  end,
}

-- Puts the reference state into m, either through load_state_dict or by
-- copying into the live tensors returned by state_dict.  A scalar entry
-- (num_batches_tracked) is given in the module's own representation.
local function load_state(m, state, mode)
  local live = m:state_dict()
  if mode == "load_state_dict" then
    local sd = {}
    for _, e in ipairs(state) do
      if type(e.value) == "number" then
        assert(live[e.name], "state_dict has no entry " .. e.name)
        sd[e.name] = live[e.name]:clone():fill_(e.value)
      else
        sd[e.name] = nn.tensor(e.value)
      end
    end
    m:load_state_dict(sd)
  else
    for _, e in ipairs(state) do
      local t = live[e.name]
      assert(t, "state_dict has no entry " .. e.name)
      if type(e.value) == "number" then
        t:fill_(e.value)
      else
        t:copy_(nn.tensor(e.value))
      end
    end
  end
end

local function run_layer_case(name, mode)
  local c = LAYERS[name]
  local m = layer_ctors[name]()
  if not c.train then
    m:eval()
  end

  -- state_dict has exactly PyTorch's names.
  local names = {}
  for _, e in ipairs(c.state) do
    names[#names + 1] = e.name
  end
  table.sort(names)
  assert.are.same(names, H.sorted_keys(m:state_dict()))

  load_state(m, c.state, mode)
  for _, e in ipairs(c.state) do
    H.assert_close(m:state_dict()[e.name], e.value, 0, "loaded " .. e.name)
  end

  -- parameters() in PyTorch's order, with the loaded values.
  local params = m:parameters()
  assert.are.equal(#c.param_grads, #params)
  local by_name = {}
  for _, e in ipairs(c.state) do
    by_name[e.name] = e.value
  end
  for i, pg in ipairs(c.param_grads) do
    H.assert_close(params[i], by_name[pg.name], 0, "parameter " .. i .. " (" .. pg.name .. ")")
  end

  local x = nn.tensor(c.input)
  local gy = nn.tensor(c.grad_output)
  H.assert_close(m:forward(x), c.output, TOL, "output")
  H.assert_close(m:backward(x, gy), c.grad_input, TOL, "grad_input")
  for i, pg in ipairs(c.param_grads) do
    H.assert_close(params[i]:grad(), pg.value, TOL, "grad of " .. pg.name)
  end

  -- Running statistics after a second forward call (train mode).
  if c.state_after then
    m:forward(nn.tensor(c.input2))
    local sd = m:state_dict()
    for _, e in ipairs(c.state_after) do
      H.assert_close(sd[e.name], e.value, TOL, e.name .. " after two forward calls")
    end
  end

  -- Gradients accumulate over backward calls until zero_grad (forward is
  -- run again on x: batch norm in train mode gives the same gradients).
  if #params > 0 then
    m:zero_grad()
    m:forward(x)
    m:backward(x, gy)
    m:backward(x, gy)
    for i, pg in ipairs(c.param_grads) do
      local twice = H.flatten(pg.value)
      for k = 1, #twice do
        twice[k] = 2 * twice[k]
      end
      H.assert_close(H.flatten(params[i]:grad()), twice, TOL,
        "grad of " .. pg.name .. " after two backward calls")
    end
    m:zero_grad()
    for i, pg in ipairs(c.param_grads) do
      H.assert_zero(params[i]:grad(), "grad of " .. pg.name .. " after zero_grad")
    end
  end
end

describe("layers match PyTorch", function()
  it("every reference case has a constructor and vice versa", function()
    assert.are.same(H.sorted_keys(LAYERS), H.sorted_keys(layer_ctors))
  end)
  -- Only forward updates running statistics, never backward, not even a
  -- second backward for the same forward (gradient accumulation).
  it("backward does not update batch norm running statistics", function()
    for _, case in ipairs{
      {nn.BatchNorm1d(3), nn.tensor{{1, 2, 0}, {0.5, -1, 2}, {3, 0, 1}, {-2, 1, -1}}},
      {nn.Sequential{nn.Linear(2, 3), nn.BatchNorm1d(3)},
       nn.tensor{{1, 2}, {0.5, -1}, {3, 0}, {-2, 1}}},
    } do
      local m, x = case[1], case[2]
      local y = m:forward(x)
      local gy = nn.ones(y:shape())
      local before = {}
      for k, t in pairs(m:state_dict()) do
        before[k] = t:totable()
      end
      m:backward(x, gy)
      m:backward(x, gy)
      for k, t in pairs(m:state_dict()) do
        H.assert_close(t, before[k], 0, tostring(m):match("^%w+") .. " " .. k ..
          " after two backward calls")
      end
    end
  end)
  for _, name in ipairs(H.sorted_keys(layer_ctors)) do
    if LAYERS[name] then
      for _, mode in ipairs{"load_state_dict", "state_dict copy_"} do
        it(name .. " (" .. mode .. ")", function()
          run_layer_case(name, mode)
        end)
      end
    end
  end
end)

-- One constructor per case of tests/ref/losses.lua; w is the reference class
-- weight tensor (nil when the case has none).
local loss_ctors = {
  cross_entropy = function() return nn.CrossEntropyLoss{} end,
  cross_entropy_weight = function(w) return nn.CrossEntropyLoss{weight = w} end,
  cross_entropy_smoothing = function() return nn.CrossEntropyLoss{label_smoothing = 0.1} end,
  cross_entropy_weight_smoothing = function(w)
    return nn.CrossEntropyLoss{weight = w, label_smoothing = 0.2}
  end,
  cross_entropy_sum = function() return nn.CrossEntropyLoss{reduction = "sum"} end,
  cross_entropy_none = function() return nn.CrossEntropyLoss{reduction = "none"} end,
  cross_entropy_weight_smoothing_sum = function(w)
    return nn.CrossEntropyLoss{weight = w, label_smoothing = 0.1, reduction = "sum"}
  end,
  cross_entropy_weight_smoothing_none = function(w)
    return nn.CrossEntropyLoss{weight = w, label_smoothing = 0.1, reduction = "none"}
  end,
  nll = function() return nn.NLLLoss{} end,
  nll_weight = function(w) return nn.NLLLoss{weight = w} end,
  nll_weight_sum = function(w) return nn.NLLLoss{weight = w, reduction = "sum"} end,
  nll_weight_none = function(w) return nn.NLLLoss{weight = w, reduction = "none"} end,
  mse_1d = function() return nn.MSELoss{} end,
  bce_4d = function() return nn.BCELoss{} end,
}
for _, red in ipairs{"mean", "sum", "none"} do
  loss_ctors["mse_" .. red] = function() return nn.MSELoss{reduction = red} end
  loss_ctors["l1_" .. red] = function() return nn.L1Loss{reduction = red} end
  loss_ctors["bce_" .. red] = function() return nn.BCELoss{reduction = red} end
  loss_ctors["bce_with_logits_" .. red] = function()
    return nn.BCEWithLogitsLoss{reduction = red}
  end
end

describe("losses match PyTorch", function()
  it("every reference case has a constructor and vice versa", function()
    assert.are.same(H.sorted_keys(LOSSES), H.sorted_keys(loss_ctors))
  end)
  for _, name in ipairs(H.sorted_keys(loss_ctors)) do
    local c = LOSSES[name]
    if c then
      it(name, function()
        local crit = loss_ctors[name](c.weight and nn.tensor(c.weight))
        local x, t = nn.tensor(c.input), nn.tensor(c.target)
        local out = crit:forward(x, t)
        if type(c.output) == "number" then
          assert.are.equal("number", type(out))
        end
        H.assert_close(out, c.output, TOL, "loss")
        H.assert_close(crit:backward(x, t), c.grad_input, TOL, "grad_input")
        -- The inputs are left untouched.
        H.assert_close(x, c.input, 0, "input after the call")
        H.assert_close(t, c.target, 0, "target after the call")
      end)
    end
  end
end)

-- One constructor per case of tests/ref/optim.lua and the lr it starts with.
local optim_ctors = {
  sgd = {0.1, function(p) return nn.optim.SGD(p, {lr = 0.1}) end},
  sgd_momentum = {0.1, function(p) return nn.optim.SGD(p, {lr = 0.1, momentum = 0.9}) end},
  sgd_momentum_dampening = {0.1, function(p)
    return nn.optim.SGD(p, {lr = 0.1, momentum = 0.9, dampening = 0.5})
  end},
  sgd_nesterov = {0.1, function(p)
    return nn.optim.SGD(p, {lr = 0.1, momentum = 0.9, nesterov = true})
  end},
  sgd_weight_decay = {0.1, function(p) return nn.optim.SGD(p, {lr = 0.1, weight_decay = 0.1}) end},
  sgd_momentum_weight_decay_nesterov = {0.05, function(p)
    return nn.optim.SGD(p, {lr = 0.05, momentum = 0.8, weight_decay = 0.01, nesterov = true})
  end},
  sgd_momentum_lr_change = {0.1, function(p)
    return nn.optim.SGD(p, {lr = 0.1, momentum = 0.9})
  end},
  adagrad = {0.1, function(p) return nn.optim.Adagrad(p, {lr = 0.1}) end},
  adagrad_lr_decay = {0.1, function(p) return nn.optim.Adagrad(p, {lr = 0.1, lr_decay = 0.05}) end},
  adagrad_weight_decay = {0.1, function(p)
    return nn.optim.Adagrad(p, {lr = 0.1, weight_decay = 0.1})
  end},
  adagrad_all = {0.2, function(p)
    return nn.optim.Adagrad(p, {lr = 0.2, lr_decay = 0.01, weight_decay = 0.05, eps = 1e-6})
  end},
  rmsprop = {0.01, function(p) return nn.optim.RMSprop(p, {lr = 0.01}) end},
  rmsprop_centered = {0.01, function(p) return nn.optim.RMSprop(p, {lr = 0.01, centered = true}) end},
  rmsprop_momentum = {0.01, function(p) return nn.optim.RMSprop(p, {lr = 0.01, momentum = 0.9}) end},
  rmsprop_weight_decay = {0.01, function(p)
    return nn.optim.RMSprop(p, {lr = 0.01, weight_decay = 0.1})
  end},
  rmsprop_all = {0.02, function(p)
    return nn.optim.RMSprop(p, {lr = 0.02, alpha = 0.9, eps = 1e-6, weight_decay = 0.05,
      momentum = 0.5, centered = true})
  end},
  adam = {0.01, function(p) return nn.optim.Adam(p, {lr = 0.01}) end},
  adam_amsgrad = {0.01, function(p) return nn.optim.Adam(p, {lr = 0.01, amsgrad = true}) end},
  adam_weight_decay = {0.01, function(p) return nn.optim.Adam(p, {lr = 0.01, weight_decay = 0.1}) end},
  adam_all = {0.02, function(p)
    return nn.optim.Adam(p, {lr = 0.02, betas = {0.8, 0.9}, eps = 1e-6, weight_decay = 0.05,
      amsgrad = true})
  end},
  adam_lr_change = {0.01, function(p) return nn.optim.Adam(p, {lr = 0.01}) end},
  adamw = {0.01, function(p) return nn.optim.AdamW(p, {lr = 0.01}) end},
  adamw_weight_decay = {0.01, function(p)
    return nn.optim.AdamW(p, {lr = 0.01, weight_decay = 0.1})
  end},
  adamw_betas_eps = {0.02, function(p)
    return nn.optim.AdamW(p, {lr = 0.02, betas = {0.8, 0.9}, eps = 1e-6, weight_decay = 0.3})
  end},
}

-- Runs steps first..last of case c on parameter p with optimizer opt,
-- comparing p after each step, both itself and its displacement from the
-- initial value (a much smaller quantity than p, so a stricter check of the
-- update).
local function run_steps(c, p, opt, first, last)
  local changes = {}
  for _, ch in ipairs(c.lr_changes or {}) do
    changes[ch.step] = ch.lr
  end
  local init = H.flatten(c.init)
  for i = first, last do
    if changes[i] then
      opt.lr = changes[i]
      assert.are.equal(changes[i], opt.lr)
    end
    p:grad():copy_(nn.tensor(c.grads[i]))
    opt:step()
    H.assert_close(p, c.params[i], TOL, "parameter after step " .. i)
    local got, want = H.flatten(p), H.flatten(c.params[i])
    for k = 1, #got do
      got[k], want[k] = got[k] - init[k], want[k] - init[k]
    end
    H.assert_close(got, want, 1e-3, "displacement after step " .. i)
  end
end

describe("optimizers match PyTorch", function()
  it("every reference case has a constructor and vice versa", function()
    assert.are.same(H.sorted_keys(OPTIM), H.sorted_keys(optim_ctors))
  end)
  for _, name in ipairs(H.sorted_keys(optim_ctors)) do
    local c = OPTIM[name]
    local lr, make = optim_ctors[name][1], optim_ctors[name][2]
    if c then
      it(name, function()
        local p = nn.tensor(c.init):requires_grad_()
        local opt = make({p})
        assert.is_true(math.abs(opt.lr - lr) <= 1e-7 * lr, "opt.lr reads the lr option")
        run_steps(c, p, opt, 1, #c.grads)
        opt:zero_grad()
        H.assert_zero(p:grad(), "grad after zero_grad")
      end)
      it(name .. " (resumed from state_dict after 3 steps)", function()
        local p = nn.tensor(c.init):requires_grad_()
        local opt = make({p})
        run_steps(c, p, opt, 1, 3)
        local state = opt:state_dict()
        local p2 = p:clone():requires_grad_()
        local opt2 = make({p2})
        opt2:load_state_dict(state)
        run_steps(c, p2, opt2, 4, #c.grads)
      end)
    end
  end
end)
