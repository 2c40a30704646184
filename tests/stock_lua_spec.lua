-- build/nn.so loaded by a stock lua5.4 (`require "nn"` with the build folder
-- on package.cpath): it trains a small CNN whose convolutions run on OpenMP
-- threads, and the interpreter exits cleanly (lua_close unloads C modules;
-- nn.so is linked -z nodelete so libgomp stays while its threads wait).
local build = os.getenv("NNLUA_BUILD") or "build"

local script = [[
package.cpath = BUILD .. "/?.so;" .. package.cpath
local nn = require "nn"
nn.set_num_threads(2)
nn.manual_seed(0)
local m = nn.Sequential{nn.Conv2d(3, 32, 3, {padding = 1}), nn.ReLU(),
                        nn.Conv2d(32, 32, 3, {padding = 1}), nn.ReLU(),
                        nn.Flatten(), nn.Linear(32 * 8 * 8, 4)}
local opt = nn.optim.SGD(m:parameters(), {lr = 0.01})
local crit = nn.CrossEntropyLoss()
local x, y = nn.randn(8, 3, 8, 8), nn.tensor{1, 2, 3, 4, 1, 2, 3, 4}
local first, last
for step = 1, 5 do
  opt:zero_grad()
  local out = m:forward(x)
  local loss = crit:forward(out, y)
  m:backward(x, crit:backward(out, y))
  opt:step()
  first = first or loss
  last = loss
end
print(string.format("ok %.6f %.6f", first, last))
]]

describe("nn.so in a stock lua5.4", function()
  it("trains on OpenMP threads and exits cleanly", function()
    if build:match("asan") then
      pending("a sanitized nn.so needs the sanitizer runtime preloaded")
      return
    end
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("local BUILD = " .. string.format("%q", build) .. "\n", script)
    f:close()
    local p = io.popen("lua5.4 " .. path .. " 2>&1; echo \"exit=$?\"")
    local out = p:read("a")
    p:close()
    os.remove(path)
    assert.truthy(out:match("exit=0\n$"), out)
    local first, last = out:match("^ok (%S+) (%S+)\n")
    assert.truthy(first, out)
    assert.is_true(tonumber(last) < tonumber(first), out)
  end)
end)
