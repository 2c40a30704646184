-- Shared helpers of the busted specs: comparing tensors with reference
-- values, building tensors from nested tables and walking every index of a
-- shape.  Specs load it with `require "helpers"` (busted --lpath=tests/?.lua).
local nn = require "nn"

local H = {}

-- Flattens a tensor, a nested table or a number into a flat array of
-- numbers (row-major) and its shape (a number has shape {}).
function H.flatten(v)
  if type(v) == "userdata" then
    v = v:totable()
  end
  if type(v) == "number" then
    return {v}, {}
  end
  assert(type(v) == "table", "expected a tensor, table or number, got " .. type(v))
  local shape = {}
  local t = v
  while type(t) == "table" do
    shape[#shape + 1] = #t
    t = t[1]
  end
  local flat = {}
  local function walk(x, d)
    if d > #shape then
      flat[#flat + 1] = x
      return
    end
    assert(type(x) == "table" and #x == shape[d], "ragged nested table")
    for i = 1, #x do
      walk(x[i], d + 1)
    end
  end
  walk(v, 1)
  return flat, shape
end

-- The nested table of shape `shape` holding the flat row-major array `flat`
-- (a number when shape is {}).
function H.nest(flat, shape)
  if #shape == 0 then
    return flat[1]
  end
  local pos = 0
  local function build(d)
    local t = {}
    for i = 1, shape[d] do
      if d == #shape then
        pos = pos + 1
        t[i] = flat[pos]
      else
        t[i] = build(d + 1)
      end
    end
    return t
  end
  return build(1)
end

-- "[2, 3]" for a shape array.
function H.shape_str(shape)
  local parts = {}
  for i, s in ipairs(shape) do
    parts[i] = tostring(s)
  end
  return "[" .. table.concat(parts, ", ") .. "]"
end

-- Shape of a tensor as an array (t:shape()), {} for a number.
function H.shape(v)
  if type(v) == "number" then
    return {}
  end
  if type(v) == "userdata" then
    return v:shape()
  end
  local _, shape = H.flatten(v)
  return shape
end

local function same_shape(a, b)
  if #a ~= #b then
    return false
  end
  for i = 1, #a do
    if a[i] ~= b[i] then
      return false
    end
  end
  return true
end

-- The multi-index (1-based) of flat position k in a row-major shape.
function H.unflatten_index(shape, k)
  local idx = {}
  local rem = k - 1
  for d = #shape, 1, -1 do
    idx[d] = rem % shape[d] + 1
    rem = rem // shape[d]
  end
  return idx
end

-- Every multi-index of a shape, in row-major order.
function H.indices(shape)
  local n = 1
  for _, s in ipairs(shape) do
    n = n * s
  end
  local out = {}
  for k = 1, n do
    out[k] = H.unflatten_index(shape, k)
  end
  return out
end

-- The float32 value nearest to x (reference files print float32 values with
-- 9 significant digits, which read back as a nearby double).
function H.f32(x)
  return (string.unpack("f", string.pack("f", x)))
end

-- The largest absolute difference between tensors a and b, which must have
-- the same shape (a number).
function H.max_abs_diff(a, b)
  assert(same_shape(a:shape(), b:shape()), "shapes differ: " .. H.shape_str(a:shape())
         .. " and " .. H.shape_str(b:shape()))
  local d = (a - b):abs():max()
  return type(d) == "number" and d or d:item()
end

-- Error criterion of the reference tests: the largest absolute difference
-- divided by the largest magnitude of the reference (floored at `floor`,
-- default 1e-3):
--     err = max_i |a_i - b_i| / max(max_i |b_i|, floor)
-- Float32 rounding in a sum or a dot product is proportional to the size of
-- the terms, not of the result, so an entry of a tensor that cancels to nearly
-- zero can only be held to the scale of the tensor; an element-wise relative
-- error would flag correct results there.  The floor keeps a reference of
-- (nearly) all zeros from demanding more than 1e-3 * tol absolute accuracy.
-- Expected values are first rounded to float32, so tol = 0 means equal.
-- Returns err and the flat position of the worst entry.
function H.max_rel_err(actual, expected, floor)
  floor = floor or 1e-3
  local a = H.flatten(actual)
  local b = H.flatten(expected)
  assert(#a == #b, ("size mismatch: %d vs %d"):format(#a, #b))
  local scale, worst, at = 0, 0, 1
  for i = 1, #b do
    b[i] = H.f32(b[i])
    scale = math.max(scale, math.abs(b[i]))
  end
  scale = math.max(scale, floor)
  for i = 1, #b do
    local d = math.abs(a[i] - b[i])
    if d ~= d then -- NaN
      return math.huge, i
    end
    if d > worst then
      worst, at = d, i
    end
  end
  return worst / scale, at
end

-- Asserts that actual (tensor or number) has the shape of expected (nested
-- table or number) and is within tol by H.max_rel_err.  A one-element tensor
-- is accepted for a number.  `what` names the compared quantity.
function H.assert_close(actual, expected, tol, what, floor)
  what = what or "value"
  assert(actual ~= nil, what .. ": got nil")
  local ashape, eshape = H.shape(actual), H.shape(expected)
  local scalar_ok = #eshape == 0 and type(actual) == "userdata" and actual:numel() == 1
  if not scalar_ok and not same_shape(ashape, eshape) then
    error(("%s: expected shape %s, got %s"):format(what, H.shape_str(eshape),
      H.shape_str(ashape)), 2)
  end
  local err, at = H.max_rel_err(actual, expected, floor)
  if not (err <= tol) then
    local a, b = H.flatten(actual), H.flatten(expected)
    local idx = H.unflatten_index(eshape, at)
    error(("%s: max relative error %.3g > %.3g (worst at %s: got %.9g, expected %.9g)")
      :format(what, err, tol, H.shape_str(idx), a[at], b[at]), 2)
  end
  return err
end

-- Asserts that every entry of a tensor is exactly zero.
function H.assert_zero(t, what)
  local flat = H.flatten(t)
  for i, v in ipairs(flat) do
    if v ~= 0 then
      error(("%s: entry %d is %.9g, expected 0"):format(what or "value", i, v), 2)
    end
  end
end

-- A tensor from a nested table (a number gives a 1-element tensor {v}).
function H.tensor(v)
  if type(v) == "number" then
    return nn.tensor{v}
  end
  return nn.tensor(v)
end

-- Sum of x_i * r_i in double precision; x a tensor or number, r a flat array.
function H.dot(x, r)
  local a = H.flatten(x)
  assert(#a == #r, ("size mismatch: %d vs %d"):format(#a, #r))
  local s = 0
  for i = 1, #a do
    s = s + a[i] * r[i]
  end
  return s
end

-- Sum of every entry of a tensor or number, in double precision.
function H.total(x)
  local s = 0
  for _, v in ipairs((H.flatten(x))) do
    s = s + v
  end
  return s
end

-- Sorted keys of a table (deterministic test order).
function H.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

-- Loads a generated reference file tests/ref/<name>.lua, located next to the
-- spec that calls this, whatever the current directory.
function H.load_ref(name)
  local src = debug.getinfo(2, "S").source
  local dir = src:match("^@(.*)[/\\][^/\\]*$") or "."
  local chunk = assert(loadfile(dir .. "/ref/" .. name .. ".lua"))
  return chunk()
end

return H
