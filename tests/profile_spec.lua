-- Module:profile: one row per layer (named as in state_dict keys, 0-based
-- positions in a Sequential) with its output shape, forward and
-- backward times and GF/s for convolutions and linear layers; the total
-- line; bad calls.
local nn = require "nn"

describe("Module:profile", function()
  local function model()
    nn.manual_seed(0)
    return nn.Sequential{
      nn.Conv2d(2, 4, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
      nn.Flatten(), nn.Linear(4 * 4 * 4, 3),
    }
  end

  it("reports every layer, its output shape, times and GF/s", function()
    local m = model()
    local text = m:profile({2, 8, 8}, {batch = 4, ["repeat"] = 2})
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.truthy(lines[1]:match("^profile: batch 4, median of 2 runs, %d+ threads$"))
    assert.truthy(lines[2]:match("^Layer%s+Type%s+Output%s+fwd ms%s+fwd GF/s%s+bwd ms%s+bwd GF/s$"))
    local want = {
      {"0", "Conv2d", "[4, 4, 8, 8]", true}, {"1", "ReLU", "[4, 4, 8, 8]", false},
      {"2", "MaxPool2d", "[4, 4, 4, 4]", false}, {"3", "Flatten", "[4, 64]", false},
      {"4", "Linear", "[4, 3]", true},
    }
    for i, w in ipairs(want) do
      local line = lines[2 + i]
      local name, typ, shape, rest = line:match("^(%S+)%s+(%S+)%s+(%[[^%]]*%])%s+(.*)$")
      assert.are.equal(w[1], name)
      assert.are.equal(w[2], typ)
      assert.are.equal(w[3], shape)
      local nums = {}
      for v in rest:gmatch("%S+") do nums[#nums + 1] = tonumber(v) end
      -- fwd ms, [fwd GF/s], bwd ms, [bwd GF/s]
      assert.are.equal(w[4] and 4 or 2, #nums)
      for _, v in ipairs(nums) do assert.is_true(v >= 0) end
      if w[4] then
        assert.is_true(nums[2] > 0)
        assert.is_true(nums[4] > 0)
      end
    end
    local f, b, ips = lines[8]:match("^total: forward ([%d.]+) ms, backward ([%d.]+) ms %((%d+) images/s")
    assert.is_truthy(f and b and ips)
    assert.truthy(lines[9]:match("^GF/s counts a direct convolution's"))
    assert.are.equal(9, #lines)
  end)

  it("leaves the parameters unchanged and their gradients zero", function()
    local m = model()
    local before = {}
    for i, p in ipairs(m:parameters()) do before[i] = p:clone() end
    m:profile({2, 8, 8}, {batch = 2, ["repeat"] = 1})
    for i, p in ipairs(m:parameters()) do
      assert.are.equal(0, (p:clone():sub(before[i])):abs():max():item())
      assert.are.equal(0, p:grad():abs():max():item())
    end
  end)

  it("can skip the backward pass", function()
    local text = model():profile({2, 8, 8}, {batch = 2, ["repeat"] = 1, backward = false})
    assert.truthy(text:match("backward 0%.00 ms"))
  end)

  it("refuses a missing or empty input shape", function()
    local m = model()
    local msg = "bad argument #1 to 'profile' (input shape table expected, e.g. {1, 28, 28})"
    assert.has_error(function() m:profile() end, msg)
    assert.has_error(function() m:profile({}) end, msg)
  end)

  it("names the layer whose input shape is wrong", function()
    local ok, err = pcall(function() model():profile({3, 8, 8}, {batch = 2}) end)
    assert.is_false(ok)
    assert.truthy(tostring(err):match("expected input of shape %[N, 2, H, W%], got %[2, 3, 8, 8%]"))
  end)
end)
