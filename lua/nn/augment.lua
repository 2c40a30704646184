-- nn.augment: image augmentation with torchvision.transforms' names,
-- parameters and defaults, executed in C (runtime/augment.c).
--
--   local A = nn.augment
--   local aug = A.Compose{
--     A.RandomResizedCrop(64, {scale = {0.5, 1}}),
--     A.RandomHorizontalFlip(),
--     A.ColorJitter{brightness = 0.2, hue = 0.05},
--     function(img) return img end,           -- a Lua step, run per sample
--     A.Normalize({0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}),
--   }
--   local y = aug(img)          -- [C,H,W] -> new tensor
--   local yb = aug:batch(x)     -- [B,C,H,W] -> new batch (also aug(x))
--
-- Images are float tensors [C,H,W] (values in [0,1] for the colour
-- transforms) and batches [B,C,H,W].  Sizes are {H, W} or one number.
-- Options follow the positional arguments as a trailing table.
--
-- Randomness: each call takes one key per C transform from the context RNG
-- (nn.manual_seed) and draws every sample's parameters from it, so a batch
-- comes out the same with any thread count and a seed reproduces a run.
-- Unlike torchvision, which draws one set of parameters per call, every
-- sample of a batch gets its own.  Consecutive C transforms of a Compose run
-- as one C pipeline, parallel over the batch; a Lua function in a Compose
-- runs per sample, and every sample must then come out the same size.
--
-- Differences from torchvision: Resize and RandomResizedCrop are always
-- bilinear with antialiasing (torchvision's antialias=True); RandomRotation
-- has no expand=true.
local _, core = ...
local C = core.augment

local A = {}

-- ---------------------------------------------------------------------------
-- Argument checking

local function typename(v)
  if core.is_tensor(v) then return "nn.Tensor" end
  return type(v)
end

-- A short rendering of an argument for messages and tostring.
local function show(v, depth)
  depth = depth or 0
  if type(v) == "number" then
    if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 1e15 then
      return string.format("%d", v)
    end
    return string.format("%.6g", v)
  elseif type(v) == "string" then
    return string.format("%q", v)
  elseif type(v) == "table" and not getmetatable(v) and depth < 2 then
    local parts, n = {}, #v
    for i = 1, n do parts[#parts + 1] = show(v[i], depth + 1) end
    local keys = {}
    for k in pairs(v) do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. show(v[k], depth + 1) end
    return "{" .. table.concat(parts, ", ") .. "}"
  elseif getmetatable(v) and getmetatable(v).__tostring then
    return tostring(v)
  end
  return typename(v)
end

-- Raised inside a constructor's parser; the constructor turns it into
-- "bad argument #n to 'Name' (msg)" blamed on its caller.
local function bad(n, msg) error({bad = true, n = n, msg = msg}, 0) end

local function is_int(v) return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v) and math.abs(v) < 2^53) end

local function is_array(v, n)
  if type(v) ~= "table" or getmetatable(v) then return false end
  if n and #v ~= n then return false end
  for i = 1, #v do if type(v[i]) ~= "number" then return false end end
  return true
end

-- A size: an integer or {n} (square) or {h, w}; returns h, w.
local function size_arg(v, n, what)
  what = what or "size"
  local h, w
  if type(v) == "number" then
    h, w = v, v
  elseif is_array(v) and (#v == 1 or #v == 2) then
    h, w = v[1], v[#v]
  end
  if not (h and is_int(h) and is_int(w) and h >= 1 and w >= 1) then
    bad(n, string.format("%s must be a positive integer or {h, w}, got %s", what, show(v)))
  end
  return math.tointeger(h), math.tointeger(w)
end

-- Checks the options table at argument n against spec (name -> checker
-- returning the normalized value or calling bad).  Returns the table.
local function options(opts, n, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" or getmetatable(opts) then
    bad(n, "options table expected, got " .. typename(opts))
  end
  for k in pairs(opts) do
    if not allowed[k] then bad(n, "unknown option '" .. tostring(k) .. "'") end
  end
  return opts
end

-- A {min, max} range (or one number v meaning {center - v, center + v}).
local function range_arg(v, n, what, single)
  if type(v) == "number" then
    if v < 0 then bad(n, string.format("%s must be non-negative, got %s", what, show(v))) end
    return single(v)
  end
  if not is_array(v, 2) then
    bad(n, string.format("%s must be a number or {min, max}, got %s", what, show(v)))
  end
  if not (v[1] <= v[2]) then
    bad(n, string.format("%s must be {min, max} with min <= max, got %s", what, show(v)))
  end
  return {v[1], v[2]}
end

local function degrees_arg(v, n, what)
  return range_arg(v, n, what or "degrees", function(d) return {-d, d} end)
end

-- fill: a number or one value per channel.
local function fill_arg(v, n)
  if v == nil then return {0} end
  if type(v) == "number" then return {v} end
  if is_array(v) and #v >= 1 and #v <= 64 then return {table.unpack(v)} end
  bad(n, "option 'fill' must be a number or an array of numbers (one per channel), got " .. show(v))
end

local PAD_MODES = {constant = true, edge = true, reflect = true, symmetric = true}

local function padding_mode_arg(v, n)
  if v == nil then return "constant" end
  if not PAD_MODES[v] then
    bad(n, "option 'padding_mode' must be 'constant', 'edge', 'reflect' or 'symmetric', got " .. show(v))
  end
  return v
end

-- padding: p (all sides), {p}, {left/right, top/bottom} or {left, top,
-- right, bottom}; returns {l, t, r, b}.
local function padding_arg(v, n, what)
  what = what or "padding"
  local ok = (type(v) == "number" and is_int(v) and v >= 0) or
             (is_array(v) and (#v == 1 or #v == 2 or #v == 4))
  if ok and type(v) == "table" then
    for i = 1, #v do ok = ok and is_int(v[i]) and v[i] >= 0 end
  end
  if not ok then
    bad(n, string.format("%s must be a non-negative integer or an array of 1, 2 or 4 of them, got %s",
      what, show(v)))
  end
  if type(v) == "number" then return {v, v, v, v} end
  if #v == 1 then return {v[1], v[1], v[1], v[1]} end
  if #v == 2 then return {v[1], v[2], v[1], v[2]} end
  return {v[1], v[2], v[3], v[4]}
end

local function interpolation_arg(v, n, default, allowed)
  if v == nil then return default end
  if not allowed[v] then
    local names = {}
    for k in pairs(allowed) do names[#names + 1] = "'" .. k .. "'" end
    table.sort(names)
    bad(n, string.format("option 'interpolation' must be %s, got %s", table.concat(names, " or "), show(v)))
  end
  return v
end

local function check_antialias(v, n)
  if v ~= nil and v ~= true then
    bad(n, "option 'antialias' must be true (resizing is always antialiased), got " .. show(v))
  end
end

local function center_arg(v, n)
  if v == nil then return nil end
  if not is_array(v, 2) then bad(n, "option 'center' must be {x, y}, got " .. show(v)) end
  return {v[1], v[2]}
end

-- ---------------------------------------------------------------------------
-- Transforms and Compose

-- A transform object: `steps` is the flattened list of {spec=} (a C
-- transform) or {fn=} (a Lua step); `segments` groups consecutive C steps
-- into compiled pipelines.
local Transform = {}
Transform.__index = Transform
Transform.__name = "nn.augment.Transform"

local function is_transform(v) return getmetatable(v) == Transform end
A.is_transform = is_transform

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

local function build(name, steps, repr)
  local segments, cur = {}, nil
  for pos, s in ipairs(steps) do
    if s.spec then
      if not cur then
        cur = {specs = {}, positions = {}}
        segments[#segments + 1] = cur
      end
      cur.specs[#cur.specs + 1] = s.spec
      cur.positions[#cur.positions + 1] = pos
    else
      cur = nil
      segments[#segments + 1] = {fn = s.fn, position = pos}
    end
  end
  for _, seg in ipairs(segments) do
    if seg.specs then seg.pipe = C.compile(seg.specs) end
  end
  return setmetatable({name = name, steps = steps, segments = segments, repr = repr}, Transform)
end

-- Defines constructor A[name]: parse(...) returns the C spec (without its
-- kind) or raises through bad().
local function define(name, parse)
  A[name] = function(...)
    local ok, spec = pcall(parse, ...)
    if not ok then
      if type(spec) == "table" and spec.bad then
        error(string.format("bad argument #%d to '%s' (%s)", spec.n, name, spec.msg), 2)
      end
      error(spec, 0)
    end
    spec.kind = name
    local args = table.pack(...)
    local parts = {}
    for i = 1, args.n do parts[i] = show(args[i]) end
    return build(name, {{spec = spec, name = name}}, name .. "(" .. table.concat(parts, ", ") .. ")")
  end
end

local function shape_str(t)
  return "[" .. table.concat(t:shape(), ", ") .. "]"
end

-- Error prefix of the step at position pos.
function Transform:_where(pos)
  local s = self.steps[pos]
  local what = s and (s.spec and s.name or "a Lua function") or nil
  if #self.steps == 1 and s and s.spec then return self.name end
  if not what then return self.name end
  return string.format("%s: transform %d (%s)", self.name, pos, what)
end

-- Runs one C segment on x (an image or a batch).
function Transform:_run(seg, x)
  local y, msg, k = C.run(seg.pipe, x)
  if not y then
    local pos = seg.positions[k]
    error((pos and self:_where(pos) or self.name) .. ": " .. msg, 0)
  end
  return y
end

-- Checks what a Lua step returned.
function Transform:_check_result(seg, y, what)
  if not core.is_tensor(y) then
    error(string.format("%s returned %s%s, expected a tensor", self:_where(seg.position),
      typename(y), what or ""), 0)
  end
  return y
end

local function check_input(x, fname, batch)
  if not core.is_tensor(x) then
    error(string.format("bad argument #1 to '%s' (nn.Tensor expected, got %s)", fname, typename(x)), 3)
  end
  local nd = x:dim()
  if batch and nd ~= 4 then
    error(string.format("bad argument #1 to '%s' (expected a batch [B, C, H, W], got %s)", fname,
      shape_str(x)), 3)
  end
  if nd ~= 3 and nd ~= 4 then
    error(string.format("bad argument #1 to '%s' (expected an image [C, H, W] or a batch "
      .. "[B, C, H, W], got %s)", fname, shape_str(x)), 3)
  end
end

-- Applies the transform to a batch [B,C,H,W]: C segments run on the whole
-- batch, Lua steps on each sample, whose results must share one shape.
function Transform:_batch(x)
  for _, seg in ipairs(self.segments) do
    if seg.pipe then
      x = self:_run(seg, x)
    else
      local shape = x:shape()
      local b, c, h, w = shape[1], shape[2], shape[3], shape[4]
      if b > 0 then
        local outs, first = {}, nil
        for i = 1, b do
          local y = seg.fn(x:narrow(1, i, 1):reshape(c, h, w))
          self:_check_result(seg, y, " for sample " .. i)
          local s = shape_str(y)
          if not first then
            first = s
          elseif s ~= first then
            error(string.format("%s returned %s for sample %d but %s for sample 1: every sample "
              .. "of a batch must come out the same size", self:_where(seg.position), s, i, first), 0)
          end
          outs[i] = y
        end
        x = core.data.stack(outs)
      end
    end
  end
  return x
end

-- aug(x): x [C,H,W] -> new image; a batch [B,C,H,W] goes through batch().
function Transform:forward(x)
  check_input(x, self.name)
  if x:dim() == 4 then return self:_batch(x) end
  local input = x
  for _, seg in ipairs(self.segments) do
    if seg.pipe then
      x = self:_run(seg, x)
    else
      x = self:_check_result(seg, seg.fn(x))
    end
  end
  if x == input then x = x:clone() end
  return x
end

Transform.__call = function(self, x) return self:forward(x) end

-- aug:batch(x): x [B,C,H,W] -> new batch, each sample with its own random
-- parameters; parallel over the batch in C.
function Transform:batch(x)
  check_input(x, "batch", true)
  return self:_batch(x)
end

Transform.__tostring = function(self) return self.repr end
Transform.__len = function(self) return #self.steps end

-- Compose{t1, t2, ...}: the transforms (nn.augment transforms, Composes,
-- or Lua functions of one image tensor) applied in order.
function A.Compose(list)
  if type(list) ~= "table" or getmetatable(list) then
    error("bad argument #1 to 'Compose' (array of transforms expected, got " .. typename(list) .. ")", 2)
  end
  local steps, lines = {}, {}
  for i = 1, #list do
    local t = list[i]
    if is_transform(t) then
      for _, s in ipairs(t.steps) do steps[#steps + 1] = s end
      lines[#lines + 1] = "  " .. tostring(t):gsub("\n", "\n  ")
    elseif callable(t) then
      steps[#steps + 1] = {fn = t}
      lines[#lines + 1] = "  <Lua function>"
    else
      error(string.format("bad argument #1 to 'Compose' (transform %d must be an nn.augment "
        .. "transform or a function, got %s)", i, typename(t)), 2)
    end
  end
  for k in pairs(list) do
    if not (math.type(k) == "integer" and k >= 1 and k <= #list) then
      error("bad argument #1 to 'Compose' (array of transforms expected, got key '"
        .. tostring(k) .. "')", 2)
    end
  end
  local repr = "Compose(" .. (#lines > 0 and "\n" .. table.concat(lines, ",\n") .. "\n" or "") .. ")"
  return build("Compose", steps, repr)
end

-- ---------------------------------------------------------------------------
-- The transforms

define("Resize", function(size, opts)
  local h, w = size_arg(size, 1)
  opts = options(opts, 2, {max_size = true, interpolation = true, antialias = true})
  interpolation_arg(opts.interpolation, 2, "bilinear", {bilinear = true})
  check_antialias(opts.antialias, 2)
  local spec = {h = h, w = w}
  if type(size) == "number" or #size == 1 then spec.w = 0 end
  if opts.max_size ~= nil then
    if spec.w ~= 0 then
      bad(2, "option 'max_size' is only supported when size is one number")
    end
    if not (is_int(opts.max_size) and opts.max_size > h) then
      bad(2, string.format("option 'max_size' must be an integer greater than size (%d), got %s",
        h, show(opts.max_size)))
    end
    spec.max_size = math.tointeger(opts.max_size)
  end
  return spec
end)

define("CenterCrop", function(size)
  local h, w = size_arg(size, 1)
  return {h = h, w = w}
end)

define("RandomCrop", function(size, opts)
  local h, w = size_arg(size, 1)
  opts = options(opts, 2, {padding = true, pad_if_needed = true, fill = true, padding_mode = true})
  if opts.pad_if_needed ~= nil and type(opts.pad_if_needed) ~= "boolean" then
    bad(2, "option 'pad_if_needed' must be a boolean, got " .. typename(opts.pad_if_needed))
  end
  return {h = h, w = w,
          padding = opts.padding ~= nil and padding_arg(opts.padding, 2, "option 'padding'") or nil,
          pad_if_needed = opts.pad_if_needed or false, fill = fill_arg(opts.fill, 2),
          padding_mode = padding_mode_arg(opts.padding_mode, 2)}
end)

define("Pad", function(padding, opts)
  local p = padding_arg(padding, 1)
  opts = options(opts, 2, {fill = true, padding_mode = true})
  return {padding = p, fill = fill_arg(opts.fill, 2), padding_mode = padding_mode_arg(opts.padding_mode, 2)}
end)

define("RandomResizedCrop", function(size, opts)
  local h, w = size_arg(size, 1)
  opts = options(opts, 2, {scale = true, ratio = true, interpolation = true, antialias = true})
  interpolation_arg(opts.interpolation, 2, "bilinear", {bilinear = true})
  check_antialias(opts.antialias, 2)
  local scale, ratio = opts.scale or {0.08, 1.0}, opts.ratio or {3 / 4, 4 / 3}
  if not (is_array(scale, 2) and 0 <= scale[1] and scale[1] <= scale[2]) then
    bad(2, "option 'scale' must be {min, max} with 0 <= min <= max, got " .. show(scale))
  end
  if not (is_array(ratio, 2) and 0 < ratio[1] and ratio[1] <= ratio[2]) then
    bad(2, "option 'ratio' must be {min, max} with 0 < min <= max, got " .. show(ratio))
  end
  return {h = h, w = w, scale = {scale[1], scale[2]}, ratio = {ratio[1], ratio[2]}}
end)

local function flip(p)
  if type(p) == "table" and not getmetatable(p) then
    options(p, 1, {p = true})
    p = p.p
  end
  if p == nil then p = 0.5 end
  if type(p) ~= "number" or p < 0 or p > 1 then
    bad(1, "p must be a probability in [0, 1], got " .. show(p))
  end
  return {p = p}
end
define("RandomHorizontalFlip", flip)
define("RandomVerticalFlip", flip)

define("RandomRotation", function(degrees, opts)
  local deg = degrees_arg(degrees, 1)
  opts = options(opts, 2, {interpolation = true, expand = true, center = true, fill = true})
  if opts.expand then bad(2, "option 'expand' = true is not supported") end
  return {degrees = deg, center = center_arg(opts.center, 2), fill = fill_arg(opts.fill, 2),
          interpolation = interpolation_arg(opts.interpolation, 2, "nearest",
            {nearest = true, bilinear = true})}
end)

define("RandomAffine", function(degrees, opts)
  local deg = degrees_arg(degrees, 1)
  opts = options(opts, 2, {translate = true, scale = true, shear = true, interpolation = true,
                           fill = true, center = true})
  local spec = {degrees = deg, center = center_arg(opts.center, 2), fill = fill_arg(opts.fill, 2),
                interpolation = interpolation_arg(opts.interpolation, 2, "nearest",
                  {nearest = true, bilinear = true})}
  local t = opts.translate
  if t ~= nil then
    if not (is_array(t, 2) and t[1] >= 0 and t[1] <= 1 and t[2] >= 0 and t[2] <= 1) then
      bad(2, "option 'translate' must be {a, b} with values in [0, 1], got " .. show(t))
    end
    spec.translate = {t[1], t[2]}
  end
  local s = opts.scale
  if s ~= nil then
    if not (is_array(s, 2) and s[1] > 0 and s[1] <= s[2]) then
      bad(2, "option 'scale' must be {min, max} with 0 < min <= max, got " .. show(s))
    end
    spec.scale = {s[1], s[2]}
  end
  local sh = opts.shear
  if sh ~= nil then
    if type(sh) == "number" then
      if sh < 0 then bad(2, "option 'shear' must be non-negative, got " .. show(sh)) end
      spec.shear = {-sh, sh}
    elseif is_array(sh) and (#sh == 2 or #sh == 4) and sh[1] <= sh[2] and (#sh == 2 or sh[3] <= sh[4]) then
      spec.shear = {table.unpack(sh)}
    else
      bad(2, "option 'shear' must be a number, {min, max} or {xmin, xmax, ymin, ymax}, got " .. show(sh))
    end
  end
  return spec
end)

-- ColorJitter{brightness=0, contrast=0, saturation=0, hue=0}, or the four
-- values positionally.
define("ColorJitter", function(...)
  local args = table.pack(...)
  local o
  local first = args[1]
  if args.n == 1 and type(first) == "table" and not getmetatable(first) and first[1] == nil then
    o = options(first, 1, {brightness = true, contrast = true, saturation = true, hue = true})
  else
    o = {brightness = args[1], contrast = args[2], saturation = args[3], hue = args[4]}
  end
  local spec = {}
  for i, name in ipairs({"brightness", "contrast", "saturation"}) do
    local v = o[name]
    if v ~= nil then
      local n = o == first and 1 or i
      local r = range_arg(v, n, name, function(x) return {math.max(0, 1 - x), 1 + x} end)
      if r[1] < 0 then
        bad(n, string.format("%s must be {min, max} with 0 <= min <= max, got %s", name, show(v)))
      end
      if not (r[1] == 1 and r[2] == 1) then spec[name] = r end
    end
  end
  if o.hue ~= nil then
    local n = o == first and 1 or 4
    local r = range_arg(o.hue, n, "hue", function(x) return {-x, x} end)
    if r[1] < -0.5 or r[2] > 0.5 then
      bad(n, "hue must be in [0, 0.5] or {min, max} with -0.5 <= min <= max <= 0.5, got " .. show(o.hue))
    end
    if not (r[1] == 0 and r[2] == 0) then spec.hue = r end
  end
  return spec
end)

-- GaussianBlur(kernel_size, sigma = {0.1, 2}): sigma a number (fixed), a
-- {min, max} range, or {sigma = ...}.
define("GaussianBlur", function(kernel_size, sigma)
  local kx, ky
  if type(kernel_size) == "number" then
    kx, ky = kernel_size, kernel_size
  elseif is_array(kernel_size) and (#kernel_size == 1 or #kernel_size == 2) then
    kx, ky = kernel_size[1], kernel_size[#kernel_size]
  end
  if not (kx and is_int(kx) and is_int(ky) and kx > 0 and ky > 0 and kx % 2 == 1 and ky % 2 == 1
          and kx <= 255 and ky <= 255) then
    bad(1, "kernel_size must be an odd positive integer (at most 255) or {kx, ky} of them, got "
      .. show(kernel_size))
  end
  if type(sigma) == "table" and not getmetatable(sigma) and sigma[1] == nil then
    options(sigma, 2, {sigma = true})
    sigma = sigma.sigma
  end
  if sigma == nil then sigma = {0.1, 2.0} end
  local s
  if type(sigma) == "number" and sigma > 0 then
    s = {sigma, sigma}
  elseif is_array(sigma, 2) and sigma[1] > 0 and sigma[1] <= sigma[2] then
    s = {sigma[1], sigma[2]}
  else
    bad(2, "sigma must be a positive number or {min, max} with 0 < min <= max, got " .. show(sigma))
  end
  return {kx = math.tointeger(kx), ky = math.tointeger(ky), sigma = s}
end)

define("Normalize", function(mean, std, opts)
  options(opts, 3, {inplace = true})
  local function list(v, n, what)
    if type(v) == "number" then return {v} end
    if not (is_array(v) and #v >= 1 and #v <= 64) then
      bad(n, string.format("%s must be a number or an array of numbers (one per channel), got %s",
        what, show(v)))
    end
    return {table.unpack(v)}
  end
  local m, s = list(mean, 1, "mean"), list(std, 2, "std")
  if #m ~= #s then
    bad(2, string.format("std has %d values but mean has %d", #s, #m))
  end
  for i = 1, #s do
    if s[i] == 0 then bad(2, "std evaluated to zero, leading to division by zero") end
  end
  return {mean = m, std = s}
end)

-- ---------------------------------------------------------------------------
-- Functional forms (torchvision.transforms.functional): one image [C,H,W]
-- with given parameters.  Offsets count pixels from the top and left edges
-- (0 = none), as in torchvision.

local F = {}
A.functional = F

local function checked(fname, f)
  return function(...)
    local ok, r = pcall(f, ...)
    if not ok then
      if type(r) == "table" and r.bad then
        error(string.format("bad argument #%d to '%s' (%s)", r.n, fname, r.msg), 2)
      end
      error(r, 0)
    end
    return r
  end
end

local function image_arg(img, n)
  if not core.is_tensor(img) or img:dim() ~= 3 then
    bad(n or 1, "expected an image [C, H, W], got "
      .. (core.is_tensor(img) and shape_str(img) or typename(img)))
  end
  return img
end

local function num(v, n, what)
  if type(v) ~= "number" then bad(n, what .. " must be a number, got " .. typename(v)) end
  return v
end

-- crop(img, top, left, height, width): zero padding where the box leaves
-- the image (torchvision's F.crop).
F.crop = checked("crop", function(img, top, left, height, width)
  image_arg(img)
  for i, v in ipairs({top, left, height, width}) do
    if not is_int(v) then bad(i + 1, "integer expected, got " .. show(v)) end
  end
  if height < 1 or width < 1 then bad(height < 1 and 4 or 5, "size must be positive") end
  return C.crop(img, math.tointeger(top), math.tointeger(left), math.tointeger(height),
    math.tointeger(width))
end)

-- pad(img, padding, {fill=0, padding_mode="constant"}).
F.pad = checked("pad", function(img, padding, opts)
  image_arg(img)
  local p = padding_arg(padding, 2)
  opts = options(opts, 3, {fill = true, padding_mode = true})
  local s = img:shape()
  return C.crop(img, 0, 0, s[2] + p[2] + p[4], s[3] + p[1] + p[3], p,
    padding_mode_arg(opts.padding_mode, 3), fill_arg(opts.fill, 3))
end)

local function shear_arg(sh, n)
  if type(sh) == "number" then return sh, 0 end
  if is_array(sh) and #sh == 1 then return sh[1], sh[1] end
  if is_array(sh, 2) then return sh[1], sh[2] end
  bad(n, "shear must be a number or {x, y}, got " .. show(sh))
end

local function warp(img, angle, translate, scale, shear, opts, n, rotate)
  opts = options(opts, n, {interpolation = true, center = true, fill = true})
  local interp = interpolation_arg(opts.interpolation, n, "nearest", {nearest = true, bilinear = true})
  local s = img:shape()
  local cx, cy = 0, 0
  local center = center_arg(opts.center, n)
  if center then cx, cy = center[1] - s[3] * 0.5, center[2] - s[2] * 0.5 end
  local fill = opts.fill ~= nil and fill_arg(opts.fill, n) or nil
  local m
  if rotate then
    m = C.affine_matrix(-angle, 0, 0, 1, 0, 0, cx, cy)
  else
    m = C.affine_matrix(angle, translate[1], translate[2], scale, shear[1], shear[2], cx, cy)
  end
  return C.warp(img, m, interp, fill)
end

-- rotate(img, angle, {interpolation="nearest", center=nil, fill=nil}):
-- counter-clockwise by angle degrees; without fill, zeros outside.
F.rotate = checked("rotate", function(img, angle, opts)
  image_arg(img)
  return warp(img, num(angle, 2, "angle"), nil, nil, nil, opts, 3, true)
end)

-- affine(img, angle, {tx, ty}, scale, shear, {interpolation, center, fill}).
F.affine = checked("affine", function(img, angle, translate, scale, shear, opts)
  image_arg(img)
  num(angle, 2, "angle")
  if not is_array(translate, 2) then bad(3, "translate must be {tx, ty}, got " .. show(translate)) end
  if type(scale) ~= "number" or scale <= 0 then bad(4, "scale must be positive, got " .. show(scale)) end
  local sx, sy = shear_arg(shear, 5)
  return warp(img, angle, translate, scale, {sx, sy}, opts, 6, false)
end)

for _, name in ipairs({"brightness", "contrast", "saturation", "hue"}) do
  F["adjust_" .. name] = checked("adjust_" .. name, function(img, factor)
    image_arg(img)
    num(factor, 2, name .. "_factor")
    if name == "hue" and (factor < -0.5 or factor > 0.5) then
      bad(2, "hue_factor must be in [-0.5, 0.5], got " .. show(factor))
    elseif name ~= "hue" and factor < 0 then
      bad(2, name .. "_factor must be non-negative, got " .. show(factor))
    end
    local c = img:shape()[1]
    if c ~= 1 and c ~= 3 then bad(1, "expected an image with 1 or 3 channels, got " .. shape_str(img)) end
    return C.adjust(img, name, factor)
  end)
end

-- The remaining functional forms run the transform with fixed parameters.
function F.hflip(img) return A.RandomHorizontalFlip(1)(img) end
function F.vflip(img) return A.RandomVerticalFlip(1)(img) end
function F.center_crop(img, size) return A.CenterCrop(size)(img) end
function F.resize(img, size, opts) return A.Resize(size, opts)(img) end
function F.normalize(img, mean, std) return A.Normalize(mean, std)(img) end
function F.gaussian_blur(img, kernel_size, sigma)
  if type(sigma) ~= "number" then
    error("bad argument #3 to 'gaussian_blur' (sigma must be a positive number, got "
      .. show(sigma) .. ")", 2)
  end
  return A.GaussianBlur(kernel_size, sigma)(img)
end

-- ---------------------------------------------------------------------------
-- Preview

-- The transform without trailing Normalize steps (for display), or aug.
local function display_pipeline(aug)
  if not is_transform(aug) then return aug end
  local steps = {}
  for i = 1, #aug.steps do steps[i] = aug.steps[i] end
  while #steps > 0 and steps[#steps].spec and steps[#steps].spec.kind == "Normalize" do
    steps[#steps] = nil
  end
  if #steps == #aug.steps then return aug end
  return build(aug.name, steps, aug.repr)
end

-- [C,H,W] with C raised to `channels` (a 1-channel image is replicated).
local function to_channels(t, channels)
  local s = t:shape()
  if s[1] == channels then return t end
  if s[1] ~= 1 then
    error(string.format("preview: cannot show an image of shape %s beside %d-channel ones",
      shape_str(t), channels), 0)
  end
  local rep = {}
  for i = 1, channels do rep[i] = t end
  return core.data.stack(rep):reshape(channels, s[2], s[3])
end

-- nn.augment.preview(ds, aug, path, {n=8, k=6, seed=0}) -> grid tensor.
-- Writes a PNG grid of n samples of ds (rows, chosen at random from the
-- seed), each shown as is and then k times through aug (columns),
-- separated by 2 white pixels.  Images of different sizes sit in the top
-- left corner of equal cells.  A trailing Normalize is left out so the
-- images stay viewable.  The global RNG state is restored afterwards.
function A.preview(ds, aug, path, opts)
  local ok_ds = (type(ds) == "table" or type(ds) == "userdata") and ds.get ~= nil
  if not ok_ds then
    error("bad argument #1 to 'preview' (dataset expected (with #ds and ds:get(i)), got "
      .. typename(ds) .. ")", 2)
  end
  if not callable(aug) then
    error("bad argument #2 to 'preview' (transform expected, got " .. typename(aug) .. ")", 2)
  end
  if type(path) ~= "string" then
    error("bad argument #3 to 'preview' (path expected, got " .. typename(path) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #4 to 'preview' (options table expected, got " .. typename(opts) .. ")", 2)
  end
  opts = opts or {}
  for k, v in pairs(opts) do
    if k ~= "n" and k ~= "k" and k ~= "seed" then
      error("bad argument #4 to 'preview' (unknown option '" .. tostring(k) .. "')", 2)
    end
    if not is_int(v) or (k ~= "seed" and v < 1) then
      error(string.format("bad argument #4 to 'preview' (option '%s' must be a %s integer, got %s)",
        k, k == "seed" and "non-negative" or "positive", show(v)), 2)
    end
  end
  local image = package.loaded["nn.image"]
  if not image then
    local ok, m = pcall(require, "nn.image")
    image = ok and m or nil
  end
  if not (image and image.save) then error("preview: nn.image.save is not available", 2) end
  local n, k = math.min(math.tointeger(opts.n or 8), #ds), math.tointeger(opts.k or 6)
  if n < 1 then error("preview: the dataset is empty", 2) end
  local seed = math.tointeger(opts.seed or 0)
  local show_aug = display_pipeline(aug)
  local order = core.data.randperm(#ds, seed)
  local saved_seed, saved_counter = core.rng_state()
  core.manual_seed(seed)
  local ok, err = pcall(function()
    local cells, ch, cw, channels = {}, 1, 1, 1
    for r = 1, n do
      local x = ds:get(order[r])
      local row = {x}
      for j = 1, k do row[j + 1] = show_aug(x) end
      for _, t in ipairs(row) do
        if not core.is_tensor(t) or t:dim() ~= 3 then
          error("preview: expected images [C, H, W], got "
            .. (core.is_tensor(t) and shape_str(t) or typename(t)), 0)
        end
        local s = t:shape()
        channels, ch, cw = math.max(channels, s[1]), math.max(ch, s[2]), math.max(cw, s[3])
      end
      cells[r] = row
    end
    local gap = 2
    local grid = core.full({channels, n * (ch + gap) - gap, (k + 1) * (cw + gap) - gap}, 1.0)
    for r, row in ipairs(cells) do
      for j, t in ipairs(row) do
        local s = t:shape()
        grid:narrow(2, (r - 1) * (ch + gap) + 1, s[2]):narrow(3, (j - 1) * (cw + gap) + 1, s[3])
          :copy_(to_channels(t, channels))
      end
    end
    image.save(path, grid)
    return grid
  end)
  core.set_rng_state(saved_seed, saved_counter)
  if not ok then error(err, 0) end
  return err
end

return A
