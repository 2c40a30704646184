-- Sequential's memory savings: BatchNorm + ReLU fused with the ReLU's output
-- recomputed for backward, activations released once dead, gradients of
-- elementwise activations written in place.  None of it may show: outputs,
-- gradients, running statistics and random numbers are bit for bit those of
-- the children run one by one, and no tensor a user holds ever changes.
local nn = require "nn"

local H = require "helpers"
local max_abs_diff = H.max_abs_diff

local function assert_same(a, b, what)
  assert.are.equal(0, max_abs_diff(a, b), what)
end

-- Conv -> BN -> ReLU blocks, a classifier with BatchNorm1d + ReLU + Dropout,
-- nested as torchvision's VGG.
local function build(seed)
  nn.manual_seed(seed)
  local features = nn.Sequential{
    nn.Conv2d(3, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(),
    nn.Conv2d(4, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(4, 6, 3, {padding = 1}), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2)}
  local classifier = nn.Sequential{
    nn.Linear(24, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3)}
  return nn.Sequential():add("features", features):add("flatten", nn.Flatten())
    :add("classifier", classifier)
end

-- The leaves run one at a time, every tensor kept, nothing fused.
local function by_hand(m, x, gy)
  local leaves, xs = m:leaves(), {x}
  for i, leaf in ipairs(leaves) do xs[i + 1] = leaf.m:forward(xs[i]) end
  local g = gy
  for i = #leaves, 1, -1 do g = leaves[i].m:backward(xs[i], g) end
  return xs[#leaves + 1], g
end

-- Every parameter gradient and buffer of a and b is equal.
local function assert_same_state(a, b)
  local pa, pb = a:named_parameters(), b:named_parameters()
  for i = 1, #pa do
    assert_same(pa[i][2], pb[i][2], pa[i][1])
    assert_same(pa[i][2]:grad(), pb[i][2]:grad(), pa[i][1] .. " grad")
  end
  local ba, bb = a:named_buffers(), b:named_buffers()
  for i = 1, #ba do assert_same(ba[i][2], bb[i][2], ba[i][1]) end
end

describe("Sequential memory savings", function()
  it("give the outputs, gradients and statistics of the children run one by one", function()
    local a, b = build(3), build(3)
    local x, gy = nn.randn(5, 3, 8, 8), nn.randn(5, 3)
    local optA = nn.optim.SGD(a:parameters(), {lr = 0.1, momentum = 0.9})
    local optB = nn.optim.SGD(b:parameters(), {lr = 0.1, momentum = 0.9})
    for step = 1, 3 do
      local seed, counter = nn.rng_state()
      local ya = a:forward(x)
      local ga = a:backward(x, gy)
      nn.set_rng_state(seed, counter)
      local yb, gb = by_hand(b, x, gy)
      assert_same(ya, yb, "output, step " .. step)
      assert_same(ga, gb, "grad_input, step " .. step)
      assert_same_state(a, b)
      optA:step(); optB:step(); optA:zero_grad(); optB:zero_grad()
    end
    a:eval(); b:eval()
    assert_same(a:forward(x), b:forward(x), "eval output")
  end)

  it("give a second backward the gradients of the first, leaving buffers and random numbers alone", function()
    local a, b = build(4), build(4)
    local x, gy = nn.randn(6, 3, 8, 8), nn.randn(6, 3)
    local seed, counter = nn.rng_state()
    a:forward(x)
    local g1 = a:backward(x, gy):clone()
    local rng = {nn.rng_state()}
    local buffers = {}
    for i, nb in ipairs(a:named_buffers()) do buffers[i] = nb[2]:clone() end
    local g2 = a:backward(x, gy)
    assert_same(g1, g2, "second grad_input")
    assert.are.same(rng, {nn.rng_state()})
    for i, nb in ipairs(a:named_buffers()) do assert_same(nb[2], buffers[i], nb[1]) end
    -- the same accumulation by hand, every tensor kept
    nn.set_rng_state(seed, counter)
    local leaves, xs = b:leaves(), {x}
    for i, leaf in ipairs(leaves) do xs[i + 1] = leaf.m:forward(xs[i]) end
    for _ = 1, 2 do
      local g = gy
      for i = #leaves, 1, -1 do g = leaves[i].m:backward(xs[i], g) end
    end
    assert_same_state(a, b)
    -- and a third, after which a new forward starts afresh
    assert_same(g1, a:backward(x, gy), "third grad_input")
    local x2 = nn.randn(6, 3, 8, 8)
    seed, counter = nn.rng_state()
    local y2 = a:forward(x2)
    nn.set_rng_state(seed, counter)
    assert_same(y2, b:forward(x2), "next forward")
  end)

  it("in eval mode give the outputs of the children run one by one, BatchNorm + ReLU fused", function()
    local a, b = build(4), build(4)
    -- BatchNorm + ReLU first (on the caller's input) and last
    nn.manual_seed(9)
    local c = nn.Sequential{nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 3, 3), nn.BatchNorm2d(3), nn.ReLU()}
    local d = nn.Sequential{nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 3, 3), nn.BatchNorm2d(3), nn.ReLU()}
    d:load_state_dict(c:state_dict())
    local x = nn.randn(5, 3, 8, 8)
    -- running statistics that differ from the initial ones
    for _, m in ipairs{a, b, c, d} do m:train(); m:forward(x); m:eval() end
    local xc = x:clone()
    for _ = 1, 2 do
      local ya, yc = a:forward(x), c:forward(x)
      local yac, ycc = ya:clone(), yc:clone()
      assert_same(ya, by_hand(b, x, nn.zeros(5, 3)), "VGG-like output")
      assert_same(yc, by_hand(d, x, nn.zeros(5, 3, 6, 6)), "output")
      a:forward(x * 3); c:forward(x * 3)
      assert_same(x, xc, "input"); assert_same(ya, yac, "output kept by the caller")
      assert_same(yc, ycc, "output kept by the caller")
    end
  end)

  it("in eval mode run Conv2d + BatchNorm2d + ReLU as one pass, bit for bit, on every convolution path", function()
    -- 32 channels: Winograd F(4x4) at 8x8 and F(2x2) at 4x4; 3 channels: im2col
    for _, case in ipairs{{32, 8}, {32, 4}, {3, 8}, {3, 2}} do
      local c, s = case[1], case[2]
      nn.manual_seed(11)
      local a = nn.Sequential{nn.Conv2d(c, 32, 3, {padding = 1}), nn.BatchNorm2d(32), nn.ReLU(),
                              nn.Conv2d(32, 32, 3, {padding = 1}), nn.BatchNorm2d(32), nn.ReLU()}
      local b = nn.Sequential{nn.Conv2d(c, 32, 3, {padding = 1}), nn.BatchNorm2d(32), nn.ReLU(),
                              nn.Conv2d(32, 32, 3, {padding = 1}), nn.BatchNorm2d(32), nn.ReLU()}
      b:load_state_dict(a:state_dict())
      local x = nn.randn(3, c, s, s)
      a:train(); a:forward(x); b:load_state_dict(a:state_dict()) -- non-trivial running statistics
      a:eval(); b:eval()
      local y, want = a:forward(x), by_hand(b, x, nn.zeros(3, 32, s, s))
      assert_same(y, want, c .. " channels at " .. s .. "x" .. s)
    end
    -- BatchNorm over other channels than the convolution's: the error of the unfused layers
    local m = nn.Sequential{nn.Conv2d(3, 4, 3), nn.BatchNorm2d(5), nn.ReLU()}
    m:eval()
    assert.has_error(function() m:forward(nn.randn(2, 3, 5, 5)) end,
                     "in module 2 (BatchNorm2d) of Sequential: expected input of shape [N, 5, H, W], got [2, 4, 3, 3]")
  end)

  it("in eval mode run Conv2d + ReLU as one pass, bit for bit, on every convolution path", function()
    -- 32 channels: Winograd at 8x8 and 4x4, tap pairs at 2x2; 3: im2col
    for _, case in ipairs{{32, 8}, {32, 4}, {32, 2}, {3, 8}} do
      local c, s = case[1], case[2]
      nn.manual_seed(12)
      local function net()
        return nn.Sequential{nn.Conv2d(c, 32, 3, {padding = 1}), nn.ReLU(),
                             nn.Conv2d(32, 32, 3, {padding = 1}), nn.BatchNorm2d(32), nn.ReLU(),
                             nn.Conv2d(32, 16, 3, {padding = 1}), nn.ReLU()}
      end
      local a, b = net(), net()
      b:load_state_dict(a:state_dict())
      a:eval(); b:eval()
      local x = nn.randn(3, c, s, s)
      local y, want = a:forward(x), by_hand(b, x, nn.zeros(3, 16, s, s))
      assert_same(y, want, c .. " channels at " .. s .. "x" .. s)
      local function num(v) return type(v) == "number" and v or v:item() end
      assert.are.equal(0, -num(y:neg():max()), "ReLU applied")
      assert.is_true(num(y:max()) > 0)
    end
  end)

  it("in training run Conv2d + ReLU as one pass: outputs, gradients and a second backward bit for bit", function()
    -- 32 channels: Winograd at 8x8 and 4x4, tap pairs at 2x2; 3: im2col
    for _, case in ipairs{{32, 8}, {32, 4}, {32, 2}, {3, 8}} do
      local c, s = case[1], case[2]
      nn.manual_seed(13)
      local function net()
        return nn.Sequential{nn.Conv2d(c, 32, 3, {padding = 1}), nn.ReLU(),
                             nn.Conv2d(32, 32, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 16, 3, {padding = 1}), nn.ReLU()}
      end
      local a, b = net(), net()
      b:load_state_dict(a:state_dict())
      local x = nn.randn(3, c, s, s)
      local ya = a:forward(x)
      local gy = nn.randn(table.unpack(ya:shape()))
      local ga = a:backward(x, gy)
      local yb, gb = by_hand(b, x, gy)
      local what = c .. " channels at " .. s .. "x" .. s
      assert_same(ya, yb, what .. ": output")
      assert_same(ga, gb, what .. ": grad_input")
      assert_same_state(a, b)
      -- a second backward (accumulating) replays the forward
      local ga2 = a:backward(x, gy)
      by_hand(b, x, gy)
      assert_same(ga2, ga, what .. ": second grad_input")
      assert_same_state(a, b)
    end
  end)

  it("never change a tensor the caller or a Lua child holds", function()
    -- Keeps what it sees, as a forward hook would.
    local Keep = nn.Module:extend("Keep")
    function Keep:forward(x) self.x, self.xc = x, x:clone(); return x * 1 end
    function Keep:backward(_, gy) self.g, self.gc = gy, gy:clone(); return gy * 1 end
    -- Returns what it is given.
    local Same = nn.Module:extend("Same")
    function Same:forward(x) return x end
    function Same:backward(_, gy) return gy end
    nn.manual_seed(5)
    local k1, k2 = Keep(), Keep()
    local m = nn.Sequential{
      nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), k1, nn.Linear(8, 8),
      nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8), k2, nn.ReLU(), nn.Flatten(), Same(),
      nn.BatchNorm1d(8), nn.ReLU()}
    local x, gy = nn.randn(5, 6), nn.randn(5, 8)
    local xc, gyc = x:clone(), gy:clone()
    for _ = 1, 2 do
      local y = m:forward(x)
      local yc = y:clone()
      local g = m:backward(x, gy)
      local gc = g:clone()
      m:backward(x, gy)
      m:forward(x * 2)
      assert_same(x, xc, "input"); assert_same(gy, gyc, "grad_output")
      assert_same(y, yc, "output"); assert_same(g, gc, "grad_input")
      for _, k in ipairs{k1, k2} do
        assert_same(k.x, k.xc, "a Lua child's input")
        assert_same(k.g, k.gc, "a Lua child's grad_output")
      end
    end
  end)

  it("run BatchNorm + ReLU as one layer pass, forward and backward, bit for bit", function()
    nn.manual_seed(6)
    local bn, bn2 = nn.BatchNorm2d(3), nn.BatchNorm2d(3)
    bn2:load_state_dict(bn:state_dict())
    local x, other = nn.randn(4, 3, 5, 5), nn.randn(4, 3, 5, 5)
    for _, training in ipairs{true, false} do
      bn:train(training); bn2:train(training)
      local y, coef = bn._c:forward_relu(x)
      local pre = bn2:forward(x)
      local want = nn.ReLU():forward(pre)
      assert_same(y, want, "fused output")
      assert_same_state(bn, bn2)
      -- the backward, the ReLU's mask within BatchNorm's passes (about half
      -- of pre is negative, so a mask taken wrongly shows)
      local gy = nn.randn(4, 3, 5, 5)
      local gx = bn._c:backward_relu(x, coef, gy)
      assert_same(gx, bn2:backward(x, nn.ReLU():backward(pre, gy)), "fused input gradient")
      assert_same_state(bn, bn2)
      bn:forward(other) -- the coefficients do not depend on the layer's state
      assert_same(bn._c:recompute_relu(x, coef), want, "recomputed output")
      bn2:forward(other)
    end
    assert.has_error(function() nn.ReLU()._c:forward_relu(x) end,
                     "ReLU: expected a BatchNorm1d or BatchNorm2d layer, got ReLU")
    assert.has_error(function() bn._c:recompute_relu(x, nn.zeros(2, 3)) end,
                     "BatchNorm2d: expected coefficients of shape [3, 3], got [2, 3]")
    local _, coef = bn._c:forward_relu(x)
    assert.has_error(function() bn._c:backward_relu(x, nn.zeros(3, 4), x) end,
                     "BatchNorm2d: expected coefficients of shape [3, 3], got [3, 4]")
    assert.has_error(function() bn._c:backward_relu(x, coef, nn.zeros(4, 3)) end,
                     "BatchNorm2d: expected grad_output of shape [4, 3, 5, 5], got [4, 3]")
    assert.has_error(function() nn.ReLU()._c:backward_relu(x, coef, x) end,
                     "ReLU: expected a BatchNorm1d or BatchNorm2d layer, got ReLU")
  end)

  it("write an activation's gradient over grad_output only when nobody else sees it", function()
    local relu = nn.ReLU()
    local x = nn.randn(4, 5)
    local gy = nn.randn(4, 5)
    local want = relu:backward(x, gy)
    local g = gy:clone()
    local r = relu._c:backward_(x, g)
    assert.is_true(rawequal(r, g))
    assert_same(g, want)
    -- a view of g is alive: g is left alone
    g = gy:clone()
    local view = g:narrow(1, 1, 2)
    r = relu._c:backward_(x, g)
    assert.is_false(rawequal(r, g))
    assert_same(r, want); assert_same(g, gy)
    assert.are.same({2, 5}, view:shape())
    -- other layers: an ordinary backward
    local lin = nn.Linear(5, 5)
    g = gy:clone()
    r = lin._c:backward_(x, g)
    assert.is_false(rawequal(r, g))
    assert_same(g, gy)
  end)
end)

-- Resident set of this process, in MiB.
local function rss_mib()
  local f = assert(io.open("/proc/self/status", "r"))
  local kb
  for line in f:lines() do kb = kb or tonumber(line:match("^VmRSS:%s*(%d+)")) end
  f:close()
  return kb / 1024
end

describe("Tensor memory and Lua's collector", function()
  it("collect dropped tensors before their storage piles up", function()
    collectgarbage()
    local before = rss_mib()
    -- 300 tensors of 8 MiB, each dropped at once: 2.4 GiB in all, which
    -- Lua's collector sees as 300 small boxes
    for _ = 1, 300 do
      local t = nn.ones(1024, 2048)
    end
    local grown = rss_mib() - before
    assert.is_true(grown < 400, string.format("resident set grew by %.0f MiB", grown))
  end)

  it("do not run a collection for each big tensor", function()
    local cycles = 0
    local mt = {}
    mt.__gc = function() cycles = cycles + 1; setmetatable({}, mt) end
    collectgarbage()
    setmetatable({}, mt)
    local kept = {}
    -- 64 tensors of 1 MiB, all kept: a cycle runs each time as much has
    -- been made as was live after the last one (at least 16 MiB), so at
    -- most about five
    for i = 1, 64 do kept[i] = nn.zeros(256, 1024) end
    assert.is_true(cycles <= 6, cycles .. " cycles")
    kept = nil
    collectgarbage()
    assert.is_true(cycles >= 1)
  end)
end)
