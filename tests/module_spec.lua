-- Modules, containers, state_dict, freezing, summary, Lua-defined modules,
-- and the optimizer objects' API and errors.
local nn = require "nn"

local function shape(t) return table.concat(t:shape(), "x") end

local H = require "helpers"
local max_abs_diff = H.max_abs_diff

describe("layers", function()
  it("have PyTorch's parameter layouts and names", function()
    local cases = {
      {nn.Linear(3, 4), {weight = "4x3", bias = "4"}},
      {nn.Linear(3, 4, {bias = false}), {weight = "4x3"}},
      {nn.Conv2d(2, 5, 3), {weight = "5x2x3x3", bias = "5"}},
      {nn.Conv2d(2, 5, {3, 2}, {bias = false}), {weight = "5x2x3x2"}},
      {nn.BatchNorm2d(6), {weight = "6", bias = "6", running_mean = "6", running_var = "6",
                           num_batches_tracked = ""}},
      {nn.BatchNorm1d(4), {weight = "4", bias = "4", running_mean = "4", running_var = "4",
                           num_batches_tracked = ""}},
    }
    for _, c in ipairs(cases) do
      local sd = c[1]:state_dict()
      local n = 0
      for k, v in pairs(sd) do
        n = n + 1
        assert.are.equal(c[2][k], shape(v), k)
      end
      local want = 0
      for _ in pairs(c[2]) do want = want + 1 end
      assert.are.equal(want, n)
    end
  end)

  it("initialise weights within PyTorch's kaiming-uniform bound", function()
    nn.manual_seed(1)
    local m = nn.Linear(100, 50)
    local w, b = m:state_dict().weight, m:state_dict().bias
    local bound = 1 / math.sqrt(100)
    assert.is_true(w:abs():max():item() <= bound)
    assert.is_true(b:abs():max():item() <= bound)
    assert.is_true(w:abs():max():item() > 0.9 * bound)
    local c = nn.Conv2d(4, 8, 3)
    local cb = 1 / math.sqrt(4 * 9)
    assert.is_true(c:state_dict().weight:abs():max():item() <= cb)
  end)

  it("initialise the same way from the same seed", function()
    nn.manual_seed(7)
    local a = nn.Linear(5, 5):state_dict().weight
    nn.manual_seed(7)
    local b = nn.Linear(5, 5):state_dict().weight
    assert.are.equal(0, max_abs_diff(a, b))
  end)

  it("print like PyTorch", function()
    assert.are.equal("Linear(in_features=3, out_features=4, bias=True)", tostring(nn.Linear(3, 4)))
    assert.are.equal("Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))",
                     tostring(nn.Conv2d(1, 32, 3, {padding = 1})))
    assert.are.equal("ReLU()", tostring(nn.ReLU()))
    local s = nn.Sequential{nn.Linear(2, 3), nn.ReLU()}
    assert.are.equal("Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): ReLU()\n)",
                     tostring(s))
  end)

  it("reject bad constructor arguments", function()
    assert.has_error(function() nn.Linear("a", 3) end,
                     "bad argument #1 to 'Linear' (number expected, got string)")
    assert.has_error(function() nn.Linear(0, 3) end,
                     "bad argument #1 to 'Linear' (in_features must be a positive integer, got 0)")
    assert.has_error(function() nn.Linear(3, 4, {bias = 1}) end,
                     "bad argument #3 to 'Linear' (option 'bias' must be a boolean, got number)")
    assert.has_error(function() nn.Linear(3, 4, {bais = true}) end,
                     "bad argument #3 to 'Linear' (unknown option 'bais')")
    assert.has_error(function() nn.Conv2d(3, 8, 0) end,
                     "bad argument #3 to 'Conv2d' (kernel_size must be an integer >= 1 or a pair {h, w} of them)")
    assert.has_error(function() nn.Conv2d(3, 8, 3, {stride = 0}) end,
                     "bad argument #4 to 'Conv2d' (stride must be an integer >= 1 or a pair {h, w} of them)")
    assert.has_error(function() nn.Dropout(1.5) end,
                     "bad argument #1 to 'Dropout' (dropout probability must be in [0, 1], got 1.5)")
    assert.has_error(function() nn.BatchNorm2d(4, {momentum = 2}) end,
                     "bad argument #2 to 'BatchNorm2d' (option 'momentum' must be in [0, 1])")
    assert.has_error(function() nn.Softmax(1) end,
                     "bad argument #1 to 'Softmax' (only the last dimension (dim = -1) is supported)")
  end)

  it("name the layer and both shapes when the input does not fit", function()
    local ok, err = pcall(function() nn.Linear(3, 4):forward(nn.zeros(2, 5)) end)
    assert.is_false(ok)
    assert.matches("^Linear: ", err)
    assert.matches("[2, 5]", err, 1, true)
    local bad = {
      {nn.Conv2d(3, 8, 3), nn.zeros(2, 1, 8, 8), "Conv2d"},
      {nn.BatchNorm2d(4), nn.zeros(2, 3, 5, 5), "BatchNorm2d"},
      {nn.MaxPool2d(2), nn.zeros(2, 3), "MaxPool2d"},
    }
    for _, c in ipairs(bad) do
      local ok2, e = pcall(c[1].forward, c[1], c[2])
      assert.is_false(ok2)
      assert.matches("^" .. c[3] .. ": ", e)
      assert.matches(table.concat(c[2]:shape(), ", "), e, 1, true)
    end
  end)

  it("raise a Lua error for a non-tensor input", function()
    local m = nn.ReLU()
    assert.has_error(function() m:forward("x") end,
                     "bad argument #1 to 'forward' (nn.Tensor expected, got string)")
  end)
end)

describe("Sequential", function()
  local function net()
    return nn.Sequential{nn.Conv2d(1, 4, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 10)}
  end

  it("indexes children from 1 and counts them", function()
    local s = net()
    assert.are.equal(5, #s)
    assert.are.equal("Conv2d", s[1]:type())
    assert.are.equal("Linear", s[5]:type())
    assert.is_nil(s[6])
  end)

  it("names state_dict entries by 0-based position as PyTorch", function()
    local sd = net():state_dict()
    for _, k in ipairs{"0.weight", "0.bias", "4.weight", "4.bias"} do
      assert.is_not_nil(sd[k], k)
    end
    local n = 0
    for _ in pairs(sd) do n = n + 1 end
    assert.are.equal(4, n)
  end)

  it("uses given names and nests with dots", function()
    local features = nn.Sequential():add(nn.Conv2d(3, 8, 3)):add(nn.BatchNorm2d(8))
    local m = nn.Sequential():add("features", features):add("classifier", nn.Sequential{nn.Linear(8, 2)})
    local sd = m:state_dict()
    for _, k in ipairs{"features.0.weight", "features.1.running_mean", "features.1.num_batches_tracked",
                       "classifier.0.weight", "classifier.0.bias"} do
      assert.is_not_nil(sd[k], k)
    end
    assert.are.equal(features, m.features)
    assert.are.equal(features, m[1])
  end)

  it("replaces a child by index", function()
    local s = net()
    s[5] = nn.Linear(64, 3)
    assert.are.same({1, 3}, s:forward(nn.zeros(1, 1, 8, 8)):shape())
  end)

  it("runs forward and backward with the right shapes", function()
    local s = net()
    local x = nn.randn(2, 1, 8, 8)
    local y = s:forward(x)
    assert.are.same({2, 10}, y:shape())
    local gx = s:backward(x, nn.ones(2, 10))
    assert.are.same({2, 1, 8, 8}, gx:shape())
    assert.is_true(s[1]:parameters()[1]:grad():abs():sum():item() > 0)
  end)

  it("says which module failed, with its position and the shapes", function()
    local s = nn.Sequential{nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2)}
    local ok, err = pcall(s.forward, s, nn.zeros(2, 4))
    assert.is_false(ok)
    assert.matches("^in module 3 %(Linear%) of Sequential: ", err)
    assert.matches("[2, 3]", err, 1, true)
  end)

  it("rejects non-modules", function()
    assert.has_error(function() nn.Sequential{nn.ReLU(), 3} end,
                     "bad argument #1 to 'Sequential' (element 2 is a number, not a module)")
    assert.has_error(function() nn.Sequential():add("x") end,
                     "bad argument #1 to 'add' (nn.Module expected, got string)")
    assert.has_error(function() nn.Sequential():add("a.b", nn.ReLU()) end,
                     "bad argument #1 to 'add' (name must be a non-empty string without '.' that is not a number)")
  end)

  it("switches train and eval recursively", function()
    local s = nn.Sequential{nn.Dropout(0.5), nn.Sequential{nn.BatchNorm1d(3)}}
    s:eval()
    assert.is_false(s[2][1].training)
    local x = nn.ones(4, 3)
    assert.are.equal(0, max_abs_diff(s[1]:forward(x), x))
    s:train()
    assert.is_true(s[2][1].training)
  end)
end)

describe("state_dict", function()
  it("returns the live tensors and loads a copy back", function()
    local a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    a:state_dict().bias:fill_(0.5)
    assert.are.equal(0.5, a:parameters()[2]:get(1))
    b:load_state_dict(a:state_dict())
    assert.are.equal(0, max_abs_diff(a:state_dict().weight, b:state_dict().weight))
    a:state_dict().weight:fill_(1)
    assert.are_not.equal(0, max_abs_diff(a:state_dict().weight, b:state_dict().weight))
  end)

  it("names every missing, unexpected and mis-shaped entry and changes nothing", function()
    local m = nn.Sequential{nn.Linear(3, 2), nn.Linear(2, 1)}
    local before = m:state_dict()["0.weight"]:clone()
    local sd = {["0.weight"] = nn.zeros(2, 3), ["1.weight"] = nn.zeros(1, 5), extra = nn.zeros(1)}
    local ok, err = pcall(m.load_state_dict, m, sd)
    assert.is_false(ok)
    assert.matches('Missing key(s) in state_dict: "0.bias", "1.bias".', err, 1, true)
    assert.matches('Unexpected key(s) in state_dict: "extra".', err, 1, true)
    assert.matches("size mismatch for 1.weight: copying a param with shape [1, 5] from checkpoint, " ..
                   "the shape in current model is [1, 2]", err, 1, true)
    assert.are.equal(0, max_abs_diff(before, m:state_dict()["0.weight"]))
  end)

  it("reports missing and unexpected keys without raising when strict is false", function()
    local m = nn.Linear(3, 2)
    local r = m:load_state_dict({weight = nn.ones(2, 3), foo = nn.zeros(1)}, {strict = false})
    assert.are.same({"bias"}, r.missing_keys)
    assert.are.same({"foo"}, r.unexpected_keys)
    assert.are.equal(1, m:state_dict().weight:get(2, 3))
  end)
end)

describe("freeze", function()
  it("gives frozen parameters no gradient and optimizers skip them", function()
    local m = nn.Sequential{nn.Linear(3, 3), nn.Linear(3, 1)}
    m[1]:freeze()
    local opt = nn.optim.SGD(m:parameters(), {lr = 0.1})
    local w1 = m[1]:parameters()[1]:clone()
    local w2 = m[2]:parameters()[1]:clone()
    local x = nn.randn(4, 3)
    m:forward(x)
    m:backward(x, nn.ones(4, 1))
    assert.are.equal(0, m[1]:parameters()[1]:grad():abs():sum():item())
    opt:step()
    assert.are.equal(0, max_abs_diff(w1, m[1]:parameters()[1]))
    assert.is_true(max_abs_diff(w2, m[2]:parameters()[1]) > 0)
    m:unfreeze()
    assert.is_true(m[1]:parameters()[1]:requires_grad())
  end)

  it("freezes by name pattern", function()
    local m = nn.Sequential():add("backbone", nn.Linear(2, 2)):add("head", nn.Linear(2, 1))
    m:freeze("^backbone%.")
    assert.is_false(m.backbone:parameters()[1]:requires_grad())
    assert.is_true(m.head:parameters()[1]:requires_grad())
    assert.has_error(function() m:freeze("nomatch") end, "freeze: no parameter name matches 'nomatch'")
  end)
end)

describe("summary", function()
  it("lists each layer's output shape, parameters and totals", function()
    local m = nn.Sequential{nn.Conv2d(1, 8, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(8 * 14 * 14, 10)}
    local s = m:summary{1, 28, 28}
    assert.matches("[-1, 8, 28, 28]", s, 1, true)
    assert.matches("[-1, 1568]", s, 1, true)
    assert.matches("Total params: " .. (8 * 9 + 8 + 1568 * 10 + 10), s, 1, true)
    assert.matches("Trainable params: ", s, 1, true)
    assert.is_true(m.training)
  end)
end)

describe("a module written in Lua", function()
  -- y = x * scale, with a learnable scale
  local Scale = nn.Module:extend("Scale")
  function Scale:init(n)
    self.scale = self:register_parameter("scale", nn.ones(n))
  end
  function Scale:forward(x)
    local y = x:clone()
    for i = 1, x:size(1) do
      for j = 1, x:size(2) do y:set(x:get(i, j) * self.scale:get(j), i, j) end
    end
    return y
  end
  function Scale:backward(x, gy)
    local gx = gy:clone()
    local g = self.scale:grad()
    for i = 1, x:size(1) do
      for j = 1, x:size(2) do
        gx:set(gy:get(i, j) * self.scale:get(j), i, j)
        if self.scale:requires_grad() then g:set(g:get(j) + gy:get(i, j) * x:get(i, j), j) end
      end
    end
    return gx
  end

  it("works inside Sequential: forward, backward, state_dict, optimizer", function()
    local m = nn.Sequential{nn.Linear(2, 3), Scale(3), nn.Linear(3, 1)}
    assert.is_not_nil(m:state_dict()["1.scale"])
    local x = nn.randn(4, 2)
    local crit = nn.MSELoss()
    local opt = nn.optim.SGD(m:parameters(), {lr = 0.05})
    local target = nn.zeros(4, 1)
    local first
    for _ = 1, 30 do
      opt:zero_grad()
      local y = m:forward(x)
      local loss = crit:forward(y, target)
      first = first or loss
      m:backward(x, crit:backward(y, target))
      opt:step()
    end
    assert.is_true(crit:forward(m:forward(x), target) < first)
    assert.are_not.equal(1, m[2].scale:get(1))
    assert.matches("(1): Scale()", tostring(m), 1, true)
  end)
end)

describe("optimizers", function()
  local function param() return nn.tensor{{1, 2, 3}}:requires_grad_() end

  it("expose lr for reading and writing", function()
    local p = param()
    local opt = nn.optim.Adam({p}, {lr = 0.01})
    assert.are.equal(0.01, opt.lr)
    opt.lr = 0.5
    assert.are.equal(0.5, opt.lr)
    assert.are.equal(0.5, opt.param_groups[1].lr)
  end)

  it("apply each group's own learning rate", function()
    local a, b = param(), param()
    local opt = nn.optim.SGD({{params = {a}, lr = 0.1}, {params = {b}}}, {lr = 1})
    a:grad():fill_(1); b:grad():fill_(1)
    opt:step()
    assert.is_true(math.abs(a:get(1, 1) - 0.9) < 1e-6)
    assert.are.equal(0, b:get(1, 1))
  end)

  it("zero gradients", function()
    local p = param()
    local opt = nn.optim.SGD({p}, {lr = 0.1})
    p:grad():fill_(3)
    opt:zero_grad()
    assert.are.equal(0, p:grad():abs():sum():item())
  end)

  it("save and restore their state", function()
    local p, q = param(), param()
    local o1 = nn.optim.Adam({p}, {lr = 0.1})
    for _ = 1, 3 do p:grad():fill_(1); o1:step() end
    local sd = o1:state_dict()
    assert.are.equal(3, sd.state[1].step)
    q:copy_(p)
    local o2 = nn.optim.Adam({q}, {lr = 0.1})
    o2:load_state_dict(sd)
    p:grad():fill_(0.5); q:grad():fill_(0.5)
    o1:step(); o2:step()
    assert.are.equal(0, max_abs_diff(p, q))
  end)

  it("reject bad arguments as torch.optim does", function()
    local p = param()
    assert.has_error(function() nn.optim.SGD({p}, {}) end,
                     "bad argument #2 to 'SGD' (option 'lr' is required)")
    assert.has_error(function() nn.optim.SGD({}, {lr = 1}) end,
                     "bad argument #1 to 'SGD' (optimizer got an empty parameter list)")
    assert.has_error(function() nn.optim.SGD({p}, {lr = 0.1, nesterov = true}) end,
                     "bad argument #2 to 'SGD' (Nesterov momentum requires a momentum and zero dampening)")
    assert.has_error(function() nn.optim.Adam({p}, {lr = -1}) end,
                     "bad argument #2 to 'Adam' (invalid lr value: -1)")
    assert.has_error(function() nn.optim.Adam({p}, {betas = {0.9, 1.0}}) end,
                     "bad argument #2 to 'Adam' (invalid beta parameter at index 1: 1.0)")
    assert.has_error(function() nn.optim.RMSprop({p}, {moment = 0.9}) end,
                     "bad argument #2 to 'RMSprop' (unknown option 'moment')")
    assert.has_error(function() nn.optim.Adagrad({nn.zeros(2)}) end,
                     "bad argument #1 to 'Adagrad' (parameter 1 of group 1 has no gradient (use t:requires_grad_()))")
  end)
end)

describe("losses", function()
  it("raise clear errors for bad targets and shapes", function()
    local ce = nn.CrossEntropyLoss()
    local x = nn.zeros(3, 4)
    assert.has_error(function() ce:forward(x, nn.tensor{1, 5, 2}) end,
                     "CrossEntropyLoss: target[2] = 5 is out of range 1..4")
    assert.has_error(function() ce:forward(x, nn.tensor{1, 0, 2}) end,
                     "CrossEntropyLoss: target[2] = 0 is out of range 1..4")
    assert.has_error(function() ce:forward(x, nn.tensor{1, 2}) end,
                     "CrossEntropyLoss: expected target of shape [3] (class labels) for input [3, 4], got [2]")
    assert.has_error(function() ce:forward(nn.zeros(3), nn.tensor{1, 2, 3}) end,
                     "CrossEntropyLoss: expected input of shape [N, C], got [3]")
    assert.has_error(function() nn.CrossEntropyLoss{reduction = "avg"} end,
                     "bad argument #1 to 'CrossEntropyLoss' (option 'reduction' must be \"mean\", \"sum\" or \"none\", got \"avg\")")
    assert.has_error(function() nn.MSELoss():forward(nn.zeros(2, 2), nn.zeros(2)) end,
                     "MSELoss: input [2, 2] and target [2] must have the same shape")
    assert.has_error(function() ce:forward(x) end,
                     "bad argument #2 to 'forward' (nn.Tensor expected, got no value)")
  end)

  it("returns per-sample losses with reduction none", function()
    local l = nn.CrossEntropyLoss{reduction = "none"}:forward(nn.zeros(3, 4), nn.tensor{1, 2, 3})
    assert.are.same({3}, l:shape())
    assert.is_true(math.abs(l:get(1) - math.log(4)) < 1e-6)
  end)
end)

describe("Sequential buffer reuse", function()
  -- y = 2x, written in Lua (so Sequential must not recycle its tensors)
  local Double = nn.Module:extend("Double")
  function Double:forward(x) return x * 2 end
  function Double:backward(_, gy) return gy * 2 end

  local function build()
    nn.manual_seed(5)
    return nn.Sequential{
      nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.ReLU(), Double(),
      nn.Sequential{nn.Linear(8, 8), nn.ReLU()}, nn.Linear(8, 3)}
  end

  -- The same computation, one child at a time, with every tensor kept.
  local function by_hand(m, x, gy)
    local xs = {x}
    for i = 1, #m do xs[i + 1] = m[i]:forward(xs[i]) end
    local g = gy
    for i = #m, 1, -1 do g = m[i]:backward(xs[i], g) end
    return xs[#m + 1], g
  end

  it("gives the same outputs and gradients as running the children by hand, twice", function()
    local x, gy = nn.randn(5, 6), nn.randn(5, 3)
    local a, b = build(), build()
    for step = 1, 2 do
      local y1 = a:forward(x)
      local g1 = a:backward(x, gy)
      local g1b = a:backward(x, gy) -- a second backward accumulates again
      local y2, g2 = by_hand(b, x, gy)
      local _, g2b = by_hand(b, x, gy)
      assert.are.equal(0, max_abs_diff(y1, y2), "step " .. step)
      assert.are.equal(0, max_abs_diff(g1, g2))
      assert.are.equal(0, max_abs_diff(g1b, g2b))
      local pa, pb = a:parameters(), b:parameters()
      for i = 1, #pa do assert.are.equal(0, max_abs_diff(pa[i]:grad(), pb[i]:grad())) end
      a:zero_grad(); b:zero_grad()
    end
    -- the caller's tensors are never recycled
    assert.are.same({5, 6}, x:shape())
    assert.are.same({5, 3}, gy:shape())
  end)
end)
