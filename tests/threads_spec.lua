-- Results must not depend on the number of OpenMP threads: every layer's
-- forward and backward, and a few training steps of a small CNN, agree
-- between 1 and 2 threads (within float tolerance; random draws exactly).
local nn = require "nn"

local function max_rel_diff(a, b)
  local d = (a - b):abs():max():item()
  local s = math.max(1, b:abs():max():item())
  return d / s
end

-- Runs f with n threads, restoring the previous count.
local function with_threads(n, f)
  local old = nn.get_num_threads()
  nn.set_num_threads(n)
  local ok, r = pcall(f)
  nn.set_num_threads(old)
  assert(ok, r)
  return r
end

describe("1 vs 2 threads", function()
  local cases = {
    {"Linear", function() return nn.Linear(37, 29) end, {64, 37}},
    {"Conv2d", function() return nn.Conv2d(3, 8, 3, {padding = 1, stride = 2}) end, {6, 3, 15, 15}},
    {"MaxPool2d", function() return nn.MaxPool2d(2) end, {4, 5, 10, 10}},
    {"AvgPool2d", function() return nn.AvgPool2d(3, {stride = 2, padding = 1}) end, {4, 5, 9, 9}},
    {"AdaptiveAvgPool2d", function() return nn.AdaptiveAvgPool2d({3, 2}) end, {4, 5, 7, 5}},
    {"BatchNorm2d", function() return nn.BatchNorm2d(5) end, {8, 5, 6, 6}},
    {"BatchNorm1d", function() return nn.BatchNorm1d(7) end, {16, 7}},
    {"GELU", function() return nn.GELU() end, {8, 100}},
    {"LogSoftmax", function() return nn.LogSoftmax() end, {8, 100}},
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " forward and backward agree", function()
      local function run(n)
        return with_threads(n, function()
          nn.manual_seed(3)
          local m = c[2]()
          local x = nn.randn(c[3])
          local y = m:forward(x)
          local gy = nn.randn(y:shape())
          local gx = m:backward(x, gy)
          local grads = {}
          for i, p in ipairs(m:parameters()) do grads[i] = p:grad():clone() end
          return {y = y, gx = gx, grads = grads}
        end)
      end
      local a, b = run(1), run(2)
      assert.is_true(max_rel_diff(a.y, b.y) <= 1e-6)
      assert.is_true(max_rel_diff(a.gx, b.gx) <= 1e-6)
      for i = 1, #a.grads do assert.is_true(max_rel_diff(a.grads[i], b.grads[i]) <= 1e-5) end
    end)
  end

  it("Dropout draws the same mask", function()
    local function run(n)
      return with_threads(n, function()
        nn.manual_seed(11)
        return nn.Dropout(0.3):forward(nn.ones(64, 1000))
      end)
    end
    assert.are.equal(0, (run(1) - run(2)):abs():max():item())
  end)

  it("a CNN trained for three steps ends with the same weights", function()
    local function run(n)
      return with_threads(n, function()
        nn.manual_seed(0)
        local m = nn.Sequential{
          nn.Conv2d(1, 8, 3, {padding = 1}), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
          nn.Flatten(), nn.Linear(8 * 7 * 7, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10)}
        local crit = nn.CrossEntropyLoss()
        local opt = nn.optim.Adam(m:parameters(), {lr = 1e-2})
        local x = nn.rand(16, 1, 14, 14)
        local y = nn.zeros(16)
        for i = 1, 16 do y:set((i * 7) % 10 + 1, i) end
        for _ = 1, 3 do
          opt:zero_grad()
          local out = m:forward(x)
          crit:forward(out, y)
          m:backward(x, crit:backward(out, y))
          opt:step()
        end
        return m:state_dict()
      end)
    end
    local a, b = run(1), run(2)
    for k, v in pairs(a) do
      assert.is_true(max_rel_diff(v, b[k]) <= 1e-4, k)
    end
  end)
end)
