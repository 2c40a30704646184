-- Conv2d in eval mode keeps its weight's prepared form (Winograd's
-- transformed weights; for inputs no larger than the kernel, the weights
-- laid out by tap) between calls.  It may never show: every output
-- is the training-mode output computed from the weight as it is now (bit for
-- bit when the path is the same, to rounding when it is not), whatever wrote to the
-- weight in between.
local nn = require "nn"

local H = require "helpers"
local max_abs_diff = H.max_abs_diff

-- A Conv2d in training mode (which prepares nothing) for reference outputs.
local twin

-- conv's output on x (conv stays in eval mode all along, so its cache is
-- only ever refreshed by a weight change), checked bit for bit against the
-- training-mode twin given conv's current weights; returns it.
local function checked(conv, x, what, tol)
  local e = conv:forward(x):clone()
  twin:load_state_dict(conv:state_dict())
  local d = max_abs_diff(e, twin:forward(x))
  if tol then
    assert.is_true(d <= tol, (what or "") .. ": differs by " .. d)
  else
    assert.are.equal(0, d, what)
  end
  return e
end

describe("Conv2d's eval-mode weight cache", function()
  -- 32 channels take the Winograd path: F(2x2) on 4x4 outputs, F(4x4) on 8x8.
  local function setup(seed)
    nn.manual_seed(seed)
    twin = nn.Conv2d(32, 32, 3, {padding = 1})
    local conv = nn.Conv2d(32, 32, 3, {padding = 1})
    conv:eval()
    return conv, nn.randn(2, 32, 4, 4), nn.randn(2, 32, 8, 8)
  end

  -- 4x4 outputs take F(4x4) in eval mode (F(2x2) in training): equal to
  -- rounding only.
  it("gives the training-mode output, call after call, for both tile sizes", function()

    local conv, x4, x8 = setup(1)
    local a = checked(conv, x4, "4x4", 1e-5)
    local b = checked(conv, x8, "8x8")
    assert.are.equal(0, max_abs_diff(a, checked(conv, x4, "4x4 again", 1e-5)))
    assert.are.equal(0, max_abs_diff(b, checked(conv, x8, "8x8 again")))
    conv:train()
    assert.is_true(max_abs_diff(a, conv:forward(x4)) <= 1e-5)
    conv:eval()
    assert.are.equal(0, max_abs_diff(b, checked(conv, x8, "8x8 after train")))
  end)

  -- Each write changes the weight; the next eval output, on the same input
  -- size (so the same prepared form), must follow it.
  local writes = {
    {"fill_", function(w) w:fill_(0.01) end},
    {"zero_", function(w) w:zero_() end},
    {"copy_", function(w) w:copy_(nn.randn(32, 32, 3, 3)) end},
    {"add_ (tensor)", function(w) w:add_(nn.randn(32, 32, 3, 3), 0.5) end},
    {"add_ (number)", function(w) w:add_(0.25) end},
    {"mul_ (tensor)", function(w) w:mul_(nn.randn(32, 32, 3, 3)) end},
    {"mul_ (number)", function(w) w:mul_(-2) end},
    {"set", function(w) w:set(7, 1, 1, 2, 2) end},
    {"uniform_", function(w) w:uniform_(-1, 1) end},
    {"normal_", function(w) w:normal_() end},
    {"a view's fill_", function(w) w:narrow(1, 3, 4):fill_(1) end},
    {"a reshaped view's mul_", function(w) w:reshape(32, 288):narrow(2, 1, 9):mul_(3) end},
  }
  for _, case in ipairs(writes) do
    it("follows " .. case[1] .. " on the weight", function()
      local conv, _, x8 = setup(2)
      local before = checked(conv, x8)
      case[2](conv:parameters()[1])
      assert.is_true(max_abs_diff(before, checked(conv, x8, case[1])) > 0)
    end)
  end

  it("follows load_state_dict", function()
    local conv, x4 = setup(3)
    local other = nn.Conv2d(32, 32, 3, {padding = 1})
    local before = checked(conv, x4, "before", 1e-5)
    conv:load_state_dict(other:state_dict())
    local after = checked(conv, x4, "after load_state_dict", 1e-5)
    assert.is_true(max_abs_diff(before, after) > 0)
    other:eval()
    assert.are.equal(0, max_abs_diff(after, other:forward(x4)))
  end)

  for _, name in ipairs{"SGD", "Adam"} do
    it("follows " .. name .. " steps taken between evaluations", function()
      local conv, _, x8 = setup(4)
      local opt = nn.optim[name](conv:parameters(), {lr = 0.1, momentum = name == "SGD" and 0.9 or nil})
      for step = 1, 3 do
        local before = checked(conv, x8)
        opt:zero_grad()
        conv:backward(x8, nn.ones(2, 32, 8, 8))
        opt:step()
        local after = checked(conv, x8, name .. " step " .. step)
        assert.is_true(max_abs_diff(before, after) > 0)
      end
    end)
  end
end)

describe("Conv2d's eval-mode weights by tap", function()
  -- 2x2 inputs with a 3x3 kernel: one gemm per pair of positions; batches
  -- of fewer than 16 samples take im2col in training.
  local function setup(seed, n)
    nn.manual_seed(seed)
    twin = nn.Conv2d(24, 40, 3, {padding = 1})
    local conv = nn.Conv2d(24, 40, 3, {padding = 1})
    conv:eval()
    return conv, nn.randn(n, 24, 2, 2)
  end

  it("matches training mode on large and small batches, on any thread count", function()
    for _, n in ipairs{16, 3} do
      local conv, x = setup(5, n)
      local a = checked(conv, x, "batch " .. n, 1e-5)
      local threads = nn.get_num_threads()
      nn.set_num_threads(1)
      local one = conv:forward(x):clone()
      nn.set_num_threads(threads)
      assert.is_true(max_abs_diff(a, one) <= 1e-5)
      assert.are.equal(0, max_abs_diff(a, checked(conv, x, "again", 1e-5)))
    end
  end)

  it("follows writes to the weight and optimizer steps", function()
    local conv, x = setup(6, 16)
    local before = checked(conv, x, "before", 1e-5)
    conv:parameters()[1]:mul_(0.5)
    local halved = checked(conv, x, "after mul_", 1e-5)
    assert.is_true(max_abs_diff(before, halved) > 0)
    local opt = nn.optim.SGD(conv:parameters(), {lr = 0.1})
    opt:zero_grad()
    conv:backward(x, nn.ones(16, 40, 2, 2))
    opt:step()
    assert.is_true(max_abs_diff(halved, checked(conv, x, "after a step", 1e-5)) > 0)
  end)
end)
