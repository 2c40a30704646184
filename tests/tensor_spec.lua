-- tensor_spec.lua - the tensor API of API.md "Tensors": constructors,
-- inspection, math, views, in-place methods, printing, and the exact error
-- of every bad call.
local nn = require "nn"

-- Compares nested tables (or numbers) within a relative tolerance.
local function near(actual, expected, tol)
  tol = tol or 1e-6
  if type(expected) == "table" then
    if type(actual) ~= "table" or #actual ~= #expected then return false end
    for i = 1, #expected do
      if not near(actual[i], expected[i], tol) then return false end
    end
    return true
  end
  if expected ~= expected then return actual ~= actual end -- NaN
  if expected == math.huge or expected == -math.huge then
    return actual == expected
  end
  return type(actual) == "number" and
      math.abs(actual - expected) <= tol * math.max(1, math.abs(expected))
end

local function assert_values(t, expected, tol)
  assert.is_true(nn.is_tensor(t), "expected a tensor")
  local got = t:totable()
  assert(near(got, expected, tol), string.format(
    "values differ: got %s", tostring(t)))
end

describe("tensor constructors", function()
  it("nn.tensor builds from nested tables, numbers and tensors", function()
    local t = nn.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.same({2, 3}, t:shape())
    assert.same({{1, 2, 3}, {4, 5, 6}}, t:totable())
    assert.same({3}, nn.tensor{1.5, 2, 3}:shape())
    assert.same({2, 1, 2}, nn.tensor{{{1, 2}}, {{3, 4}}}:shape())
    local s = nn.tensor(2.5)
    assert.equal(0, s:dim())
    assert.equal(2.5, s:item())
    assert.same({0}, nn.tensor{}:shape())
    assert.same({2, 0}, nn.tensor{{}, {}}:shape())
    local c = nn.tensor(t)
    c:set(100, 1, 1)
    assert.equal(1, t:get(1, 1)) -- a copy, not a view
  end)

  it("zeros, ones, full take varargs or one table", function()
    for _, sizes in ipairs{{2, 3}, {{2, 3}}} do
      local z = nn.zeros(table.unpack(sizes))
      assert.same({2, 3}, z:shape())
      assert.same({{0, 0, 0}, {0, 0, 0}}, z:totable())
      assert.same({{1, 1, 1}, {1, 1, 1}}, nn.ones(table.unpack(sizes)):totable())
    end
    assert.same({{7, 7}}, nn.full({1, 2}, 7):totable())
    assert.equal(0, nn.zeros():dim())
    assert.same({4, 0}, nn.ones(4, 0):shape())
  end)

  it("rand and randn draw from the seeded generator", function()
    nn.manual_seed(123)
    local r = nn.rand(1000)
    local n = nn.randn{10, 100}
    assert.same({1000}, r:shape())
    assert.same({10, 100}, n:shape())
    assert.is_true(r:max():item() < 1)
    assert.is_true(-r:max():item() <= 0)
    assert.is_true(math.abs(r:mean():item() - 0.5) < 0.05)
    assert.is_true(math.abs(n:mean():item()) < 0.1)
    assert.is_true(math.abs((n * n):mean():item() - 1) < 0.15)
  end)

  it("arange follows torch.arange", function()
    local cases = {
      {{5}, {0, 1, 2, 3, 4}},
      {{2, 5}, {2, 3, 4}},
      {{1, 2, 0.25}, {1, 1.25, 1.5, 1.75}},
      {{3, 0, -1}, {3, 2, 1}},
      {{0}, {}},
      {{2, 2}, {}},
    }
    for _, c in ipairs(cases) do
      local t = nn.arange(table.unpack(c[1]))
      assert.same({#c[2]}, t:shape())
      assert.same(c[2], t:totable())
    end
  end)

  it("is_tensor tells tensors apart", function()
    assert.is_true(nn.is_tensor(nn.zeros(1)))
    assert.is_false(nn.is_tensor(1))
    assert.is_false(nn.is_tensor({}))
    assert.is_false(nn.is_tensor(nil))
  end)
end)

describe("tensor inspection", function()
  local t = nn.tensor{{1, 2, 3}, {4, 5, 6}}

  it("shape, size, dim, numel, #", function()
    assert.same({2, 3}, t:shape())
    assert.same({2, 3}, t:size())
    assert.equal(2, t:size(1))
    assert.equal(3, t:size(2))
    assert.equal(3, t:size(-1))
    assert.equal(2, t:size(-2))
    assert.equal(2, t:dim())
    assert.equal(6, t:numel())
    assert.equal(2, #t)
    assert.equal(0, nn.tensor(1):numel() - 1)
  end)

  it("get and set use 1-based indices", function()
    local u = t:clone()
    assert.equal(6, u:get(2, 3))
    assert.equal(u, u:set(-1.5, 2, 3))
    assert.equal(-1.5, u:get(2, 3))
    assert.equal(6, t:get(2, 3))
    local s = nn.tensor(4)
    assert.equal(4, s:get())
    s:set(5)
    assert.equal(5, s:item())
  end)

  it("item and totable", function()
    assert.equal(3, nn.tensor{{3}}:item())
    assert.equal(21, t:sum():item())
    assert.same({{1, 2, 3}, {4, 5, 6}}, t:totable())
    assert.equal(2, nn.tensor(2):totable())
    assert.same({}, nn.zeros(0):totable())
  end)

  it("tostring prints like PyTorch", function()
    local cases = {
      {nn.tensor{{1, 2}, {3, 4}}, "tensor([[1., 2.],\n        [3., 4.]])"},
      {nn.tensor{1.5, -2.25}, "tensor([ 1.5000, -2.2500])"},
      {nn.tensor{1e-5, 1}, "tensor([1.0000e-05, 1.0000e+00])"},
      {nn.tensor(2), "tensor(2.)"},
      {nn.tensor(0.5), "tensor(0.5000)"},
      {nn.zeros(0), "tensor([])"},
      {nn.zeros(0, 3), "tensor([], shape=[0, 3])"},
      {nn.tensor{1 / 0, -1 / 0, 1}, "tensor([inf, -inf, 1.])"},
      {nn.tensor{{{1, 2}}, {{3, 4}}},
       "tensor([[[1., 2.]],\n\n        [[3., 4.]]])"},
      {nn.arange(20) / 10,
       "tensor([0.0000, 0.1000, 0.2000, 0.3000, 0.4000, 0.5000, 0.6000, " ..
       "0.7000, 0.8000,\n        0.9000, 1.0000, 1.1000, 1.2000, 1.3000, " ..
       "1.4000, 1.5000, 1.6000, 1.7000,\n        1.8000, 1.9000])"},
      {nn.arange(2000):reshape(1000, 2) + 1000,
       "tensor([[1000., 1001.],\n        [1002., 1003.],\n" ..
       "        [1004., 1005.],\n        ...,\n        [2994., 2995.],\n" ..
       "        [2996., 2997.],\n        [2998., 2999.]], shape=[1000, 2])"},
      {nn.arange(1001),
       "tensor([   0.,    1.,    2.,  ...,  998.,  999., 1000.], " ..
       "shape=[1001])"},
    }
    for _, c in ipairs(cases) do assert.equal(c[2], tostring(c[1])) end
  end)
end)

describe("tensor math", function()
  local a = nn.tensor{{1, 2}, {3, 4}}
  local b = nn.tensor{{5, 6}, {7, 8}}

  it("+ - * / with a tensor or a number on either side", function()
    local cases = {
      {a + b, {{6, 8}, {10, 12}}},
      {a - b, {{-4, -4}, {-4, -4}}},
      {a * b, {{5, 12}, {21, 32}}},
      {b / a, {{5, 3}, {7 / 3, 2}}},
      {a + 1, {{2, 3}, {4, 5}}},
      {1 - a, {{0, -1}, {-2, -3}}},
      {a * 2, {{2, 4}, {6, 8}}},
      {12 / a, {{12, 6}, {4, 3}}},
      {a / 2, {{0.5, 1}, {1.5, 2}}},
      {-a, {{-1, -2}, {-3, -4}}},
      {a:add(b), {{6, 8}, {10, 12}}},
      {a:sub(1), {{0, 1}, {2, 3}}},
      {a:mul(b), {{5, 12}, {21, 32}}},
      {a:div(4), {{0.25, 0.5}, {0.75, 1}}},
      {a:neg(), {{-1, -2}, {-3, -4}}},
    }
    for i, c in ipairs(cases) do
      assert(near(c[1]:totable(), c[2]), "case " .. i)
    end
  end)

  it("broadcasts like PyTorch", function()
    assert.same({{11, 22}, {13, 24}}, (a + nn.tensor{10, 20}):totable())
    assert.same({{2, 4}, {6, 8}}, (a * nn.tensor{{2}}):totable())
    local outer = nn.tensor{{1}, {2}} * nn.tensor{1, 2, 3}
    assert.same({{1, 2, 3}, {2, 4, 6}}, outer:totable())
    assert.same({2, 2}, (a + nn.tensor(1)):shape())
  end)

  it("exp, log, sqrt, abs", function()
    local x = nn.tensor{0.5, 1, 4}
    assert_values(x:exp(), {math.exp(0.5), math.exp(1), math.exp(4)})
    assert_values(x:log(), {math.log(0.5), 0, math.log(4)})
    assert_values(x:sqrt(), {math.sqrt(0.5), 1, 2})
    assert_values(nn.tensor{-2, 0, 3}:abs(), {2, 0, 3})
    assert_values(nn.tensor{-1, 0}:log(), {0 / 0, -math.huge})
  end)

  it("matmul covers matrices and vectors", function()
    local m = nn.tensor{{1, 2, 3}, {4, 5, 6}}
    local cases = {
      {m:matmul(nn.tensor{{1, 0}, {0, 1}, {1, 1}}), {{4, 5}, {10, 11}}},
      {nn.tensor{1, 1}:matmul(m), {5, 7, 9}},
      {m:matmul(nn.tensor{1, 0, -1}), {-2, -2}},
      {nn.tensor{1, 2, 3}:matmul(nn.tensor{4, 5, 6}), 32},
    }
    for _, c in ipairs(cases) do assert.same(c[2], c[1]:totable()) end
    local batched = nn.arange(12):reshape(2, 2, 3):matmul(nn.ones(3, 1))
    assert.same({{{3}, {12}}, {{21}, {30}}}, batched:totable())
  end)

  it("sum and mean over everything or one dimension", function()
    local m = nn.tensor{{1, 2, 3}, {4, 5, 6}}
    assert.equal(0, m:sum():dim())
    assert.equal(21, m:sum():item())
    assert.equal(3.5, m:mean():item())
    assert.same({5, 7, 9}, m:sum(1):totable())
    assert.same({6, 15}, m:sum(2):totable())
    assert.same({6, 15}, m:sum(-1):totable())
    assert.same({2.5, 3.5, 4.5}, m:mean(1):totable())
    assert.same({{2}, {5}}, m:mean(2, true):totable())
    assert.same({{5, 7, 9}}, m:sum(1, true):totable())
    assert.equal(0, nn.zeros(0):sum():item())
  end)

  it("max and argmax return 1-based indices", function()
    local m = nn.tensor{{1, 9, 9}, {7, 2, 7}}
    assert.equal(9, m:max():item())
    local v, i = m:max(2)
    assert.same({9, 7}, v:totable())
    assert.same({2, 1}, i:totable()) -- the first maximum, as torch
    v, i = m:max(1)
    assert.same({7, 9, 9}, v:totable())
    assert.same({2, 1, 1}, i:totable())
    assert.same({2, 1}, m:argmax(2):totable())
    assert.same({{2}, {1}}, m:argmax(2, true):totable())
    assert.same({2, 1, 1}, m:argmax(1):totable())
    assert.equal(2, m:argmax():item()) -- flat position over all elements
    assert.equal(0, m:argmax():dim())
  end)

  it("clone copies storage", function()
    local c = a:clone()
    c:fill_(0)
    assert.same({{1, 2}, {3, 4}}, a:totable())
  end)
end)

describe("tensor views", function()
  it("reshape shares storage when contiguous, -1 infers a size", function()
    local t = nn.arange(6)
    local r = t:reshape(2, 3)
    assert.same({{0, 1, 2}, {3, 4, 5}}, r:totable())
    r:set(50, 2, 3)
    assert.equal(50, t:get(6))
    assert.same({3, 2}, t:reshape{-1, 2}:shape())
    assert.same({6}, r:reshape(-1):shape())
    assert.same({}, nn.tensor{3}:reshape():shape())
  end)

  it("narrow makes a strided view; contiguous copies it", function()
    local t = nn.arange(12):reshape(3, 4)
    local v = t:narrow(2, 2, 2)
    assert.same({{1, 2}, {5, 6}, {9, 10}}, v:totable())
    assert.is_false(v:is_contiguous())
    assert.is_true(t:is_contiguous())
    assert.equal(t, t:contiguous())
    local c = v:contiguous()
    assert.is_true(c:is_contiguous())
    v:fill_(-1)
    assert.same({{0, -1, -1, 3}, {4, -1, -1, 7}, {8, -1, -1, 11}},
      t:totable())
    assert.same({{1, 2}, {5, 6}, {9, 10}}, c:totable())
    assert.same({{8, -1, -1, 11}}, t:narrow(1, -1, 1):totable())
    -- math and reshape on the strided view
    assert.same({{-2, -2}, {-2, -2}, {-2, -2}}, (v * 2):totable())
    assert.same({-1, -1, -1, -1, -1, -1}, v:reshape(6):totable())
  end)
end)

describe("tensor in-place methods", function()
  it("return self", function()
    local t = nn.zeros(2, 2)
    for _, call in ipairs{
      function() return t:fill_(1) end,
      function() return t:zero_() end,
      function() return t:copy_(nn.ones(4)) end,
      function() return t:add_(1) end,
      function() return t:mul_(2) end,
      function() return t:uniform_() end,
      function() return t:normal_() end,
      function() return t:set(1, 1, 1) end,
      function() return t:requires_grad_() end,
    } do
      assert.equal(t, call())
    end
  end)

  it("fill_, zero_, copy_", function()
    local t = nn.zeros(2, 3)
    t:fill_(2.5)
    assert.same({{2.5, 2.5, 2.5}, {2.5, 2.5, 2.5}}, t:totable())
    t:zero_()
    assert.same({{0, 0, 0}, {0, 0, 0}}, t:totable())
    t:copy_(nn.arange(6)) -- equal element counts, row-major order
    assert.same({{0, 1, 2}, {3, 4, 5}}, t:totable())
    t:narrow(2, 2, 2):copy_(nn.tensor{{10, 11}, {12, 13}})
    assert.same({{0, 10, 11}, {3, 12, 13}}, t:totable())
  end)

  it("add_ and mul_ with numbers, tensors and alpha", function()
    local t = nn.tensor{{1, 2}, {3, 4}}
    t:add_(1)
    assert.same({{2, 3}, {4, 5}}, t:totable())
    t:add_(nn.tensor{{1, 1}, {1, 1}}, -2)
    assert.same({{0, 1}, {2, 3}}, t:totable())
    t:add_(nn.tensor{10, 20}) -- broadcast
    assert.same({{10, 21}, {12, 23}}, t:totable())
    t:add_(2, 0.5)
    assert.same({{11, 22}, {13, 24}}, t:totable())
    t:mul_(0.5)
    assert.same({{5.5, 11}, {6.5, 12}}, t:totable())
    t:mul_(nn.tensor{{2, 0}, {1, 2}})
    assert.same({{11, 0}, {6.5, 24}}, t:totable())
    t:add_(t)
    assert.same({{22, 0}, {13, 48}}, t:totable())
  end)

  it("uniform_ and normal_ fill from the generator", function()
    local t = nn.zeros(100, 100)
    t:uniform_(-2, -1)
    assert.is_true(t:max():item() < -1 and -(-t):max():item() >= -2)
    t:normal_(3, 0)
    assert.same({3, 3}, {t:get(1, 1), t:get(100, 100)})
    t:normal_(10, 2)
    assert.is_true(math.abs(t:mean():item() - 10) < 0.1)
  end)
end)

describe("parameters", function()
  it("grad, requires_grad, requires_grad_", function()
    local p = nn.ones(2, 3)
    assert.is_nil(p:grad())
    assert.is_false(p:requires_grad())
    p:requires_grad_()
    assert.is_true(p:requires_grad())
    local g = p:grad()
    assert.same({{0, 0, 0}, {0, 0, 0}}, g:totable())
    g:fill_(1) -- the gradient is shared, not copied
    assert.same({{1, 1, 1}, {1, 1, 1}}, p:grad():totable())
    p:requires_grad_(false)
    assert.is_false(p:requires_grad())
    assert.is_not_nil(p:grad())
  end)
end)

describe("context", function()
  it("manual_seed makes draws reproducible", function()
    nn.manual_seed(42)
    local a, an = nn.rand(50), nn.randn(3, 4)
    local au = nn.zeros(7):uniform_(1, 2)
    nn.manual_seed(42)
    local b, bn = nn.rand(50), nn.randn(3, 4)
    local bu = nn.zeros(7):uniform_(1, 2)
    assert.same(a:totable(), b:totable())
    assert.same(an:totable(), bn:totable())
    assert.same(au:totable(), bu:totable())
    nn.manual_seed(43)
    assert.are_not.same(a:totable(), nn.rand(50):totable())
  end)

  it("set_num_threads/get_num_threads; results do not depend on them",
    function()
      local saved = nn.get_num_threads()
      local results = {}
      for k, n in ipairs{1, 3} do
        nn.set_num_threads(n)
        assert.equal(n, nn.get_num_threads())
        nn.manual_seed(5)
        local x = nn.randn(300, 400)
        results[k] = {x:sum():item(), (x * x + 1):sum(2):totable(),
                      x:max():item(), x:argmax():item()}
      end
      nn.set_num_threads(saved)
      assert.same(results[1], results[2])
    end)
end)

describe("tensor errors", function()
  local t = nn.tensor{{1, 2}, {3, 4}}
  local freed = nn.zeros(2)
  getmetatable(freed).__close(freed)
  local cases = {
    -- constructors
    {function() nn.tensor{{1, 2}, {3}} end,
     "bad argument #1 to 'tensor' (entry [2] has length 1, expected 2)"},
    {function() nn.tensor{{1, 2}, {3, "x"}} end,
     "bad argument #1 to 'tensor' (entry [2][2] must be a number, got string)"},
    {function() nn.tensor{{1, 2}, 3} end,
     "bad argument #1 to 'tensor' (entry [2] must be a table, got number)"},
    {function() nn.tensor{{1, {2}}, {3, 4}} end,
     "bad argument #1 to 'tensor' (entry [1][2] must be a number, got table)"},
    {function() nn.tensor("abc") end,
     "bad argument #1 to 'tensor' (table, number or nn.Tensor expected, " ..
     "got string)"},
    {function() nn.tensor{{{{{{{{{1}}}}}}}}} end,
     "bad argument #1 to 'tensor' (more than 8 levels of nesting)"},
    {function() nn.zeros(-1) end,
     "bad argument #1 to 'zeros' (size must be non-negative)"},
    {function() nn.zeros(2, "x") end,
     "bad argument #2 to 'zeros' (number expected, got string)"},
    {function() nn.zeros{2, -3} end,
     "bad argument #1 to 'zeros' (size 2 must be a non-negative integer, " ..
     "got -3)"},
    {function() nn.zeros(2.5) end,
     "bad argument #1 to 'zeros' (number has no integer representation)"},
    {function() nn.zeros(1e12) end,
     "tensor of shape [1000000000000] is too large to allocate"},
    {function() nn.ones(1, 1, 1, 1, 1, 1, 1, 1, 1) end,
     "bad argument #9 to 'ones' (at most 8 dimensions)"},
    {function() nn.full(2, 3) end,
     "bad argument #1 to 'full' (table expected, got number)"},
    {function() nn.full({2}) end,
     "bad argument #2 to 'full' (number expected, got no value)"},
    {function() nn.rand{1e6, 1e6} end,
     "tensor of shape [1000000, 1000000] is too large to allocate"},
    {function() nn.randn(-2) end,
     "bad argument #1 to 'randn' (size must be non-negative)"},
    {function() nn.arange() end,
     "bad argument #1 to 'arange' (number expected, got no value)"},
    {function() nn.arange(0, 1, 0) end, "arange step must be nonzero"},
    {function() nn.arange(5, 0) end,
     "arange from 5 to 0 cannot advance by step 1"},
    {function() nn.arange(0, 1 / 0) end,
     "arange bounds and step must be finite"},
    {function() nn.arange(1e15) end,
     "arange of 1000000000000000 elements is too large to allocate"},
    -- inspection
    {function() t:size(3) end,
     "bad argument #1 to 'size' (dimension 3 out of range for a tensor " ..
     "with 2 dimensions)"},
    {function() t:size(-3) end,
     "bad argument #1 to 'size' (dimension -3 out of range for a tensor " ..
     "with 2 dimensions)"},
    {function() t:get(3, 1) end,
     "bad argument #1 to 'get' (index 3 out of range 1..2 in dimension 1)"},
    {function() t:get(1, 0) end,
     "bad argument #2 to 'get' (index 0 out of range 1..2 in dimension 2)"},
    {function() t:get(1) end,
     "bad argument #2 to 'get' (expected 2 indices, got 1)"},
    {function() t:get(1, 1, 1) end,
     "bad argument #3 to 'get' (expected 2 indices, got 3)"},
    {function() t:get(1, "a") end,
     "bad argument #2 to 'get' (number expected, got string)"},
    {function() t:set(1, 3, 1) end,
     "bad argument #2 to 'set' (index 3 out of range 1..2 in dimension 1)"},
    {function() t:set("x", 1, 1) end,
     "bad argument #1 to 'set' (number expected, got string)"},
    {function() t:item() end,
     "item: a tensor with 4 elements cannot be converted to a number"},
    {function() local _ = #nn.tensor(1) end, "a 0-dim tensor has no length"},
    {function() t.shape(5) end,
     "bad argument #1 to 'shape' (nn.Tensor expected, got number)"},
    {function() freed:numel() end,
     "calling 'numel' on bad self (tensor has been freed)"},
    -- math
    {function() local _ = t + {} end,
     "bad argument #2 to 'add' (nn.Tensor or number expected, got table)"},
    {function() local _ = {} - t end,
     "bad argument #1 to 'sub' (nn.Tensor or number expected, got table)"},
    {function() local _ = t * "x" end,
     "bad argument #2 to 'mul' (nn.Tensor or number expected, got string)"},
    {function() local _ = t / true end,
     "bad argument #2 to 'div' (nn.Tensor or number expected, got boolean)"},
    {function() local _ = t + nn.zeros(3, 2) end,
     "add: shapes [2, 2] and [3, 2] do not match"},
    {function() local _ = t - nn.zeros(3) end,
     "sub: shapes [2, 2] and [3] do not match"},
    {function() local _ = nn.zeros(2, 3) * nn.zeros(3, 2) end,
     "mul: shapes [2, 3] and [3, 2] do not match"},
    {function() t:matmul(nn.zeros(3, 2)) end,
     "matmul: shapes [2, 2] and [3, 2] cannot be multiplied (inner sizes " ..
     "2 and 3 differ)"},
    {function() nn.zeros(3):matmul(nn.zeros(4)) end,
     "matmul: shapes [3] and [4] cannot be multiplied (inner sizes 3 and 4 " ..
     "differ)"},
    {function() t:matmul(nn.tensor(2)) end,
     "matmul: shapes [2, 2] and [] cannot be multiplied (both need at " ..
     "least 1 dimension)"},
    {function() t:matmul(3) end,
     "bad argument #1 to 'matmul' (nn.Tensor expected, got number)"},
    {function() t:sum(3) end,
     "bad argument #1 to 'sum' (dimension 3 out of range for a tensor " ..
     "with 2 dimensions)"},
    {function() t:mean(0) end,
     "bad argument #1 to 'mean' (dimension 0 out of range for a tensor " ..
     "with 2 dimensions)"},
    {function() t:sum(1, 1) end,
     "bad argument #2 to 'sum' (boolean expected, got number)"},
    {function() t:max(5) end,
     "bad argument #1 to 'max' (dimension 5 out of range for a tensor " ..
     "with 2 dimensions)"},
    {function() nn.zeros(0):max() end,
     "cannot take the max of an empty tensor"},
    {function() nn.zeros(2, 0):max(2) end,
     "cannot take the max over dimension 2, which has size 0"},
    {function() t:argmax(3) end,
     "bad argument #1 to 'argmax' (dimension 3 out of range for a tensor " ..
     "with 2 dimensions)"},
    {function() nn.zeros(0):argmax() end,
     "argmax: cannot take the max of an empty tensor"},
    {function() t.log(5) end,
     "bad argument #1 to 'log' (nn.Tensor expected, got number)"},
    {function() t.exp() end,
     "bad argument #1 to 'exp' (nn.Tensor expected, got no value)"},
    {function() t.sqrt("x") end,
     "bad argument #1 to 'sqrt' (nn.Tensor expected, got string)"},
    {function() t.abs({}) end,
     "bad argument #1 to 'abs' (nn.Tensor expected, got table)"},
    {function() t.clone(1) end,
     "bad argument #1 to 'clone' (nn.Tensor expected, got number)"},
    -- views
    {function() t:reshape(5) end,
     "cannot reshape a tensor of shape [2, 2] (4 elements) to [5]"},
    {function() t:reshape(-1, -1) end, "only one dimension can be -1"},
    {function() t:reshape(-2, 2) end,
     "bad argument #1 to 'reshape' (size must be an integer >= -1, got -2)"},
    {function() t:reshape{2, "x"} end,
     "bad argument #1 to 'reshape' (size 2 must be an integer >= -1, got x)"},
    {function() t:reshape(1.5) end,
     "bad argument #1 to 'reshape' (number has no integer representation)"},
    {function() t:narrow(3, 1, 1) end,
     "bad argument #1 to 'narrow' (dimension 3 out of range for a tensor " ..
     "with 2 dimensions)"},
    {function() t:narrow(1, 2, 2) end,
     "narrow of dimension 1: elements 2..3 out of range 1..2"},
    {function() t:narrow(1, 4, 1) end,
     "bad argument #2 to 'narrow' (start 4 out of range 1..3)"},
    {function() t:narrow(1, 1, -1) end,
     "bad argument #3 to 'narrow' (length -1 out of range 0..2)"},
    -- in place
    {function() t:fill_("x") end,
     "bad argument #1 to 'fill_' (number expected, got string)"},
    {function() t:copy_(nn.zeros(3)) end,
     "copy_: cannot copy a tensor of shape [3] into [2, 2]"},
    {function() t:copy_(5) end,
     "bad argument #1 to 'copy_' (nn.Tensor expected, got number)"},
    {function() t:add_("x") end,
     "bad argument #1 to 'add_' (nn.Tensor or number expected, got string)"},
    {function() t:add_(nn.zeros(3)) end,
     "add_: shape [3] cannot be broadcast to [2, 2]"},
    {function() t:add_(nn.zeros(2), "x") end,
     "bad argument #2 to 'add_' (number expected, got string)"},
    {function() t:mul_({}) end,
     "bad argument #1 to 'mul_' (nn.Tensor or number expected, got table)"},
    {function() t:mul_(nn.zeros(2, 2, 2)) end,
     "mul_: shape [2, 2, 2] cannot be broadcast to [2, 2]"},
    {function() t.zero_(nil) end,
     "bad argument #1 to 'zero_' (nn.Tensor expected, got nil)"},
    {function() t:uniform_(1, 0) end,
     "bad argument #2 to 'uniform_' (upper bound must not be below the " ..
     "lower one)"},
    {function() t:normal_(0, -1) end,
     "bad argument #2 to 'normal_' (std must be non-negative)"},
    {function() t:requires_grad_(1) end,
     "bad argument #1 to 'requires_grad_' (boolean expected, got number)"},
    -- context
    {function() nn.manual_seed("x") end,
     "bad argument #1 to 'manual_seed' (number expected, got string)"},
    {function() nn.set_num_threads(0) end,
     "bad argument #1 to 'set_num_threads' (thread count must be in 1..1024)"},
  }
  for i, c in ipairs(cases) do
    it("case " .. i .. ": " .. c[2], function()
      assert.has_error(c[1], c[2])
    end)
  end

  it("leave the tensor unchanged", function()
    assert.same({{1, 2}, {3, 4}}, t:totable())
    assert.equal("nn.Tensor (freed)", tostring(freed))
  end)
end)
