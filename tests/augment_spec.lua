-- nn.augment: torchvision's geometry and colour formulas (reference values
-- from tools/gen_augment_ref.py), determinism from the seed and across
-- thread counts, Compose with Lua steps, error messages, the DataLoader
-- hook and the preview grid.
local nn = require "nn"
local H = require "helpers"

local A = nn.augment
local F = A.functional
local ref = H.load_ref("augment_ref")

local NNLUA = (os.getenv("NNLUA_BUILD") or "build") .. "/nnlua"

-- Asserts that f raises an error containing `want` (plain text).
local function assert_error(f, want)
  local ok, err = pcall(f)
  assert(not ok, "expected an error containing: " .. want)
  err = tostring(err)
  if not err:find(want, 1, true) then
    error(string.format("error message\n  %s\ndoes not contain\n  %s", err, want), 2)
  end
end

-- The reference image `name` (pixel (c, y, x) = ((37c + 11y + 7x + salt)
-- % 23) / 22, as the generator builds it).
local function ref_image(name)
  local im = ref.images[name]
  local c, h, w = table.unpack(im.shape)
  local t = {}
  for k = 0, c - 1 do
    t[k + 1] = {}
    for y = 0, h - 1 do
      t[k + 1][y + 1] = {}
      for x = 0, w - 1 do
        t[k + 1][y + 1][x + 1] = ((37 * k + 11 * y + 7 * x + im.salt) % 23) / 22
      end
    end
  end
  return nn.tensor(t)
end

local function flat(t) return (H.flatten(t)) end

local function same(a, b)
  if table.concat(a:shape(), ",") ~= table.concat(b:shape(), ",") then return false end
  local x, y = flat(a), flat(b)
  for i = 1, #x do
    if x[i] ~= y[i] then return false end
  end
  return true
end

-- Evaluates a reference case's call with T = nn.augment, F = functional.
local function run_case(c, img)
  local env = {T = A, F = F, img = img}
  local v = assert(load("return " .. c.call, c.name, "t", env))()
  if c.call:match("^T%.") then v = v(img) end
  return v
end

-- Is t [C, h, w] one of the h x w windows of the flat reference image
-- (shape {C, H, W})?  Returns the (top, left) offset when it is.
local function window_of(t, data, shape)
  local s = t:shape()
  local x = flat(t)
  local C, Hh, W = shape[1], shape[2], shape[3]
  for top = 0, Hh - s[2] do
    for left = 0, W - s[3] do
      local ok = true
      for c = 0, C - 1 do
        for y = 0, s[2] - 1 do
          for xx = 0, s[3] - 1 do
            local a = x[(c * s[2] + y) * s[3] + xx + 1]
            local b = H.f32(data[(c * Hh + top + y) * W + left + xx + 1])
            if a ~= b then ok = false break end
          end
          if not ok then break end
        end
        if not ok then break end
      end
      if ok then return top, left end
    end
  end
  return nil
end

describe("nn.augment", function()
  local threads

  setup(function() threads = nn.get_num_threads() end)
  teardown(function() nn.set_num_threads(threads) end)

  describe("matches torchvision", function()
    for _, c in ipairs(ref.cases) do
      it(c.name .. ": " .. c.call, function()
        local img = ref_image(c.image)
        if c.windows then
          -- A random crop of the padded image: every sample of a batch must be
          -- one of its windows, and the offsets must vary.
          local x = nn.data.stack({img, img, img, img, img, img, img, img, img, img, img, img})
          local env = {T = A, F = F}
          local aug = assert(load("return " .. c.call, c.name, "t", env))()
          local y = aug:batch(x)
          local seen = {}
          for b = 1, 12 do
            local top, left = window_of(y:narrow(1, b, 1):reshape(table.unpack(y:shape(), 2)),
              c.data, c.shape)
            assert(top, c.name .. ": sample " .. b .. " is not a window of the padded image")
            seen[top .. "," .. left] = true
          end
          local n = 0
          for _ in pairs(seen) do n = n + 1 end
          assert.is_true(n > 1, "the crop offset never changed")
          return
        end
        local out = run_case(c, img)
        assert.are.same(c.shape, out:shape())
        H.assert_close(out, H.nest(c.data, c.shape), c.tol, c.name)
      end)
    end
  end)

  describe("randomness", function()
    local aug = A.Compose{
      A.RandomResizedCrop({20, 24}, {scale = {0.3, 1}}),
      A.RandomHorizontalFlip(), A.RandomVerticalFlip(),
      A.RandomRotation(30), A.RandomAffine(10, {translate = {0.1, 0.2}, scale = {0.9, 1.1},
                                                shear = {-5, 5, -3, 3}}),
      A.RandomCrop(18, {padding = 2, padding_mode = "reflect"}),
      A.ColorJitter{brightness = 0.3, contrast = 0.3, saturation = 0.3, hue = 0.1},
      A.GaussianBlur(3), A.Normalize({0.5, 0.5, 0.5}, {0.2, 0.2, 0.2}),
    }
    local x
    before_each(function()
      nn.manual_seed(123)
      x = nn.rand(24, 3, 30, 32)
    end)

    it("reproduces a batch from the seed", function()
      nn.manual_seed(7)
      local a = aug:batch(x)
      nn.manual_seed(7)
      local b = aug:batch(x)
      local c = aug:batch(x)
      assert.are.same({24, 3, 18, 18}, a:shape())
      assert.is_true(same(a, b))
      assert.is_false(same(a, c))
    end)

    it("gives identical batches with 1 and 2 threads", function()
      nn.set_num_threads(1)
      nn.manual_seed(11)
      local a = aug:batch(x)
      nn.set_num_threads(2)
      nn.manual_seed(11)
      local b = aug:batch(x)
      assert.is_true(same(a, b))
    end)

    it("draws parameters per sample", function()
      local img = nn.rand(3, 30, 32)
      local y = aug:batch(nn.data.stack({img, img, img}))
      assert.is_false(same(y:narrow(1, 1, 1), y:narrow(1, 2, 1)))
      assert.is_false(same(y:narrow(1, 2, 1), y:narrow(1, 3, 1)))
    end)

    it("reproduces single images from the seed; aug(batch) is aug:batch", function()
      local img = nn.rand(3, 30, 32)
      nn.manual_seed(3)
      local a = aug(img)
      nn.manual_seed(3)
      assert.is_true(same(a, aug(img)))
      nn.manual_seed(5)
      local b = aug(x)
      nn.manual_seed(5)
      assert.is_true(same(b, aug:batch(x)))
    end)

    it("flips about half of the samples with p = 0.5", function()
      local img = nn.rand(1, 2, 5)
      local list = {}
      for i = 1, 200 do list[i] = img end
      local y = A.RandomHorizontalFlip()(nn.data.stack(list))
      local flipped = F.hflip(img)
      local n = 0
      for b = 1, 200 do
        local s = y:narrow(1, b, 1):reshape(1, 2, 5)
        if same(s, flipped) then
          n = n + 1
        else
          assert.is_true(same(s, img))
        end
      end
      assert.is_true(n > 70 and n < 130, "flipped " .. n .. " of 200")
      assert.is_true(same(A.RandomHorizontalFlip(0)(img), img))
    end)

    it("keeps ColorJitter factors in their ranges", function()
      local img = nn.full({3, 4, 4}, 0.5)
      local list = {}
      for i = 1, 50 do list[i] = img end
      local y = A.ColorJitter{brightness = {0.5, 1.5}}:batch(nn.data.stack(list))
      local lo, hi = math.huge, -math.huge
      for _, v in ipairs(flat(y)) do lo, hi = math.min(lo, v), math.max(hi, v) end
      assert.is_true(lo >= 0.25 - 1e-6 and hi <= 0.75 + 1e-6)
      assert.is_true(hi - lo > 0.3)
    end)
  end)

  describe("Compose", function()
    it("runs Lua steps between C steps, per sample in a batch", function()
      local calls = 0
      local function double(t)
        calls = calls + 1
        return t * 2
      end
      local aug = A.Compose{A.CenterCrop(4), double, A.Normalize(1, 0.5)}
      local img = nn.rand(3, 6, 6)
      local y = aug(img)
      local want = A.Normalize(1, 0.5)(F.center_crop(img, 4) * 2)
      H.assert_close(y, want:totable(), 1e-6)
      local x = nn.rand(5, 3, 6, 6)
      calls = 0
      local yb = aug:batch(x)
      assert.are.equal(5, calls)
      assert.are.same({5, 3, 4, 4}, yb:shape())
      H.assert_close(yb:narrow(1, 2, 1), aug(x:narrow(1, 2, 1):reshape(3, 6, 6)):reshape(1, 3, 4, 4)
        :totable(), 1e-6)
    end)

    it("flattens nested Composes and consumes the RNG as the single transforms", function()
      local crop, flip = A.RandomCrop(5, {padding = 1}), A.RandomVerticalFlip()
      local img = nn.rand(2, 6, 7)
      nn.manual_seed(9)
      local a = A.Compose{A.Compose{crop, flip}, A.Compose{}}(img)
      nn.manual_seed(9)
      local b = A.Compose{crop, flip}(img)
      assert.is_true(same(a, b))
      assert.are.equal(2, #A.Compose{A.Compose{crop, flip}, A.Compose{}})
      -- An empty Compose returns a copy.
      local c = A.Compose{}(img)
      assert.is_true(same(c, img))
      c:fill_(0)
      assert.is_false(same(c, img))
    end)

    it("prints the pipeline", function()
      assert.are.equal("RandomCrop(32, {padding=4})", tostring(A.RandomCrop(32, {padding = 4})))
      assert.are.equal("Compose(\n  RandomHorizontalFlip(),\n  <Lua function>,\n  Normalize(0.5, 0.25)\n)",
        tostring(A.Compose{A.RandomHorizontalFlip(), function(t) return t end, A.Normalize(0.5, 0.25)}))
    end)

    it("requires every sample to come out the same size", function()
      local n = 0
      local aug = A.Compose{A.RandomHorizontalFlip(), function(t)
        n = n + 1
        return n == 2 and F.center_crop(t, 3) or t
      end}
      assert_error(function() aug:batch(nn.rand(3, 1, 4, 4)) end,
        "Compose: transform 2 (a Lua function) returned [1, 3, 3] for sample 2 but [1, 4, 4] for "
        .. "sample 1: every sample of a batch must come out the same size")
      assert_error(function() A.Compose{function() return 1 end}(nn.rand(1, 2, 2)) end,
        "Compose: transform 1 (a Lua function) returned number, expected a tensor")
    end)
  end)

  describe("errors", function()
    it("rejects bad parameters with the transform's name", function()
      local cases = {
        {function() A.RandomCrop(0) end,
         "bad argument #1 to 'RandomCrop' (size must be a positive integer or {h, w}, got 0)"},
        {function() A.RandomCrop({3, 4, 5}) end,
         "bad argument #1 to 'RandomCrop' (size must be a positive integer or {h, w}, got {3, 4, 5})"},
        {function() A.RandomCrop(8, {padding = -1}) end,
         "bad argument #2 to 'RandomCrop' (option 'padding' must be a non-negative integer or an "
         .. "array of 1, 2 or 4 of them, got -1)"},
        {function() A.RandomCrop(8, {padding_mode = "wrap"}) end,
         "bad argument #2 to 'RandomCrop' (option 'padding_mode' must be 'constant', 'edge', "
         .. "'reflect' or 'symmetric', got \"wrap\")"},
        {function() A.RandomCrop(8, {pading = 2}) end,
         "bad argument #2 to 'RandomCrop' (unknown option 'pading')"},
        {function() A.CenterCrop("a") end,
         "bad argument #1 to 'CenterCrop' (size must be a positive integer or {h, w}, got \"a\")"},
        {function() A.Resize(0) end,
         "bad argument #1 to 'Resize' (size must be a positive integer or {h, w}, got 0)"},
        {function() A.Resize({4, 5}, {max_size = 9}) end,
         "bad argument #2 to 'Resize' (option 'max_size' is only supported when size is one number)"},
        {function() A.Resize(8, {interpolation = "bicubic"}) end,
         "bad argument #2 to 'Resize' (option 'interpolation' must be 'bilinear', got \"bicubic\")"},
        {function() A.RandomResizedCrop(8, {scale = {1, 0.5}}) end,
         "bad argument #2 to 'RandomResizedCrop' (option 'scale' must be {min, max} with "
         .. "0 <= min <= max, got {1, 0.5})"},
        {function() A.RandomResizedCrop(8, {ratio = {0, 1}}) end,
         "bad argument #2 to 'RandomResizedCrop' (option 'ratio' must be {min, max} with "
         .. "0 < min <= max, got {0, 1})"},
        {function() A.RandomHorizontalFlip(1.5) end,
         "bad argument #1 to 'RandomHorizontalFlip' (p must be a probability in [0, 1], got 1.5)"},
        {function() A.RandomVerticalFlip({q = 1}) end,
         "bad argument #1 to 'RandomVerticalFlip' (unknown option 'q')"},
        {function() A.RandomRotation(-5) end,
         "bad argument #1 to 'RandomRotation' (degrees must be non-negative, got -5)"},
        {function() A.RandomRotation({10, -10}) end,
         "bad argument #1 to 'RandomRotation' (degrees must be {min, max} with min <= max, got {10, -10})"},
        {function() A.RandomRotation(10, {expand = true}) end,
         "bad argument #2 to 'RandomRotation' (option 'expand' = true is not supported)"},
        {function() A.RandomRotation(10, {interpolation = "cubic"}) end,
         "bad argument #2 to 'RandomRotation' (option 'interpolation' must be 'bilinear' or 'nearest', "
         .. "got \"cubic\")"},
        {function() A.RandomRotation(10, {fill = "red"}) end,
         "bad argument #2 to 'RandomRotation' (option 'fill' must be a number or an array of numbers "
         .. "(one per channel), got \"red\")"},
        {function() A.RandomAffine(10, {translate = {2, 0}}) end,
         "bad argument #2 to 'RandomAffine' (option 'translate' must be {a, b} with values in [0, 1], "
         .. "got {2, 0})"},
        {function() A.RandomAffine(10, {scale = {0, 1}}) end,
         "bad argument #2 to 'RandomAffine' (option 'scale' must be {min, max} with 0 < min <= max, "
         .. "got {0, 1})"},
        {function() A.RandomAffine(10, {shear = {1, 2, 3}}) end,
         "bad argument #2 to 'RandomAffine' (option 'shear' must be a number, {min, max} or "
         .. "{xmin, xmax, ymin, ymax}, got {1, 2, 3})"},
        {function() A.ColorJitter{brightness = -1} end,
         "bad argument #1 to 'ColorJitter' (brightness must be non-negative, got -1)"},
        {function() A.ColorJitter{contrast = {-1, 1}} end,
         "bad argument #1 to 'ColorJitter' (contrast must be {min, max} with 0 <= min <= max, got {-1, 1})"},
        {function() A.ColorJitter{hue = 0.7} end,
         "bad argument #1 to 'ColorJitter' (hue must be in [0, 0.5] or {min, max} with "
         .. "-0.5 <= min <= max <= 0.5, got 0.7)"},
        {function() A.ColorJitter(0.2, 0.2, "x") end,
         "bad argument #3 to 'ColorJitter' (saturation must be a number or {min, max}, got \"x\")"},
        {function() A.ColorJitter{brightnes = 0.2} end,
         "bad argument #1 to 'ColorJitter' (unknown option 'brightnes')"},
        {function() A.GaussianBlur(4) end,
         "bad argument #1 to 'GaussianBlur' (kernel_size must be an odd positive integer "
         .. "(at most 255) or {kx, ky} of them, got 4)"},
        {function() A.GaussianBlur(3, {0.5, 0.1}) end,
         "bad argument #2 to 'GaussianBlur' (sigma must be a positive number or {min, max} with "
         .. "0 < min <= max, got {0.5, 0.1})"},
        {function() A.Normalize({0.5, 0.5}, {0.5}) end,
         "bad argument #2 to 'Normalize' (std has 1 values but mean has 2)"},
        {function() A.Normalize({0.5}, {0}) end,
         "bad argument #2 to 'Normalize' (std evaluated to zero, leading to division by zero)"},
        {function() A.Pad(-2) end,
         "bad argument #1 to 'Pad' (padding must be a non-negative integer or an array of 1, 2 or 4 "
         .. "of them, got -2)"},
        {function() A.Compose{A.RandomHorizontalFlip(), 3} end,
         "bad argument #1 to 'Compose' (transform 2 must be an nn.augment transform or a function, "
         .. "got number)"},
        {function() A.Compose(3) end,
         "bad argument #1 to 'Compose' (array of transforms expected, got number)"},
        {function() F.adjust_hue(nn.rand(3, 2, 2), 0.6) end,
         "bad argument #2 to 'adjust_hue' (hue_factor must be in [-0.5, 0.5], got 0.6)"},
        {function() F.crop(nn.rand(3, 2, 2), 0, 0, 0, 1) end,
         "bad argument #4 to 'crop' (size must be positive)"},
      }
      for _, c in ipairs(cases) do assert_error(c[1], c[2]) end
    end)

    it("names the sizes when the image is smaller than the crop", function()
      local img = nn.rand(3, 20, 24)
      assert_error(function() A.RandomCrop(32)(img) end,
        "RandomCrop: required crop size [32, 32] is larger than input image size [20, 24] "
        .. "(input [3, 20, 24])")
      assert.are.same({3, 22, 24}, A.RandomCrop({22, 24}, {padding = {0, 1}})(img):shape())
      assert_error(function() A.RandomCrop({30, 24}, {padding = {0, 2}})(img) end,
        "RandomCrop: required crop size [30, 24] is larger than the padded input image size "
        .. "[24, 24] (input [3, 20, 24])")
      assert_error(function()
        A.Compose{A.RandomHorizontalFlip(), A.RandomCrop(32)}:batch(nn.rand(2, 3, 20, 24))
      end, "Compose: transform 2 (RandomCrop): required crop size [32, 32] is larger than input "
        .. "image size [20, 24] (input [3, 20, 24])")
      -- pad_if_needed pads instead.
      assert.are.same({3, 32, 32}, A.RandomCrop(32, {pad_if_needed = true})(img):shape())
    end)

    it("checks the image against the transform", function()
      assert_error(function() A.ColorJitter{brightness = 0.2}(nn.rand(4, 8, 8)) end,
        "ColorJitter: expected an image with 1 or 3 channels, got [4, 8, 8]")
      assert_error(function() A.Normalize({0.5, 0.5, 0.5}, {1, 1, 1})(nn.rand(1, 8, 8)) end,
        "Normalize: mean and std have 3 values but the image has 1 channels")
      assert_error(function() A.RandomRotation(5, {fill = {1, 0}})(nn.rand(3, 8, 8)) end,
        "RandomRotation: fill has 2 values but the image has 3 channels")
      assert_error(function() A.RandomHorizontalFlip()(nn.rand(5, 5)) end,
        "bad argument #1 to 'RandomHorizontalFlip' (expected an image [C, H, W] or a batch "
        .. "[B, C, H, W], got [5, 5])")
      assert_error(function() A.RandomHorizontalFlip():batch(nn.rand(3, 5, 5)) end,
        "bad argument #1 to 'batch' (expected a batch [B, C, H, W], got [3, 5, 5])")
      assert_error(function() A.RandomHorizontalFlip()("img") end,
        "bad argument #1 to 'RandomHorizontalFlip' (nn.Tensor expected, got string)")
      -- ColorJitter with nothing to do accepts any channel count.
      assert.are.same({4, 8, 8}, A.ColorJitter()(nn.rand(4, 8, 8)):shape())
    end)
  end)

  describe("DataLoader", function()
    -- A dataset of n images [3, 10, 12] with a batch fast path, counting
    -- how samples are read.
    local Toy = nn.data.dataset_class("Toy")
    function Toy:size() return self.n end
    function Toy:get(i)
      self.gets = self.gets + 1
      local s = self.sizes and self.sizes[i] or {10, 12}
      return nn.full({3, s[1], s[2]}, i / 100), (i - 1) % 3 + 1
    end
    local function toy(n, with_batch, sizes)
      local ds = setmetatable({n = n, gets = 0, batches = 0, sizes = sizes}, Toy)
      if with_batch then
        ds.batch = function(self, idx)
          self.batches = self.batches + 1
          local xs, ys = {}, {}
          for k, i in ipairs(idx) do
            xs[k] = nn.full({3, 10, 12}, i / 100)
            ys[k] = (i - 1) % 3 + 1
          end
          return nn.data.stack(xs), nn.tensor(ys)
        end
      end
      return ds
    end

    local aug = A.Compose{A.RandomCrop(8), A.RandomHorizontalFlip(), A.Normalize(0.5, 0.5)}

    it("augments whole batches from the dataset's fast path", function()
      local ds = toy(10, true)
      local loader = nn.data.DataLoader(ds, {batch_size = 4, transform = aug})
      nn.manual_seed(1)
      local shapes, labels = {}, {}
      for x, y in loader do
        shapes[#shapes + 1] = table.concat(x:shape(), "x")
        for _, v in ipairs(flat(y)) do labels[#labels + 1] = v end
      end
      assert.are.same({"4x3x8x8", "4x3x8x8", "2x3x8x8"}, shapes)
      assert.are.same({1, 2, 3, 1, 2, 3, 1, 2, 3, 1}, labels)
      assert.are.equal(3, ds.batches)
      assert.are.equal(0, ds.gets)
      -- The same as the pipeline on the raw batch, from the same seed.
      nn.manual_seed(1)
      local x1 = loader(nil, nil)
      nn.manual_seed(1)
      assert.is_true(same(x1, aug:batch(ds:batch({1, 2, 3, 4}))))
    end)

    it("stacks samples first when the dataset has no batch method", function()
      local ds = toy(5, false)
      local loader = nn.data.DataLoader(ds, {batch_size = 5, transform = aug})
      nn.manual_seed(2)
      local x = loader(nil, nil)
      assert.are.same({5, 3, 8, 8}, x:shape())
      assert.are.equal(5, ds.gets)
      nn.manual_seed(2)
      local raw = {}
      for i = 1, 5 do raw[i] = nn.full({3, 10, 12}, i / 100) end
      assert.is_true(same(x, aug:batch(nn.data.stack(raw))))
    end)

    it("applies the pipeline per sample to raw samples of different sizes", function()
      local ds = toy(3, false, {{10, 12}, {11, 9}, {12, 12}})
      local loader = nn.data.DataLoader(ds, {batch_size = 3, transform = A.Compose{A.CenterCrop(8)}})
      local x = loader(nil, nil)
      assert.are.same({3, 3, 8, 8}, x:shape())
    end)

    it("works on Fashion-MNIST", function()
      local ds = nn.data.fashion_mnist{split = "test"}
      local loader = nn.data.DataLoader(ds, {batch_size = 16, transform = A.Compose{
        A.RandomCrop(28, {padding = 2}), A.RandomHorizontalFlip(), A.RandomRotation(10)}})
      local x, y = loader(nil, nil)
      assert.are.same({16, 1, 28, 28}, x:shape())
      assert.are.same({16}, y:shape())
    end)
  end)

  describe("preview", function()
    local Imgs = nn.data.dataset_class("Imgs")
    function Imgs:size() return 5 end
    function Imgs:get(i)
      local t = {}
      for c = 1, 3 do
        t[c] = {}
        for y = 1, 8 do
          t[c][y] = {}
          for x = 1, 10 do t[c][y][x] = ((c * 7 + y * 3 + x * i) % 11) / 10 end
        end
      end
      return nn.tensor(t), 1
    end
    local ds = setmetatable({}, Imgs)
    local path = os.tmpname() .. ".png"

    teardown(function() os.remove(path) end)

    it("writes a grid of n rows of 1 + k images, 2-pixel gaps", function()
      local aug = A.Compose{A.RandomResizedCrop(6, {scale = {0.5, 1}}), A.RandomHorizontalFlip(),
                            A.Normalize(0.5, 0.25)}
      local before = {nn.rng_state()}
      local grid = A.preview(ds, aug, path, {n = 3, k = 2, seed = 4})
      assert.are.same(before, {nn.rng_state()})
      -- Cells of the largest image (8 x 10), 2-pixel gaps.
      assert.are.same({3, 3 * 10 - 2, 3 * 12 - 2}, grid:shape())
      local info = nn.image.info(path)
      assert.are.equal(34, info.width)
      assert.are.equal(28, info.height)
      -- Column 1 shows the samples as they are; the gap is white.
      local cell = grid:narrow(2, 1, 8):narrow(3, 1, 10)
      local found = false
      for i = 1, 5 do
        if same(cell, ds:get(i)) then found = true end
      end
      assert.is_true(found, "the first cell is not a dataset image")
      for _, v in ipairs(flat(grid:narrow(2, 9, 2))) do assert.are.equal(1, v) end
      -- The trailing Normalize is left out: values stay in [0, 1].
      for _, v in ipairs(flat(grid)) do assert.is_true(v >= 0 and v <= 1) end
      -- The seed fixes the grid.
      assert.is_true(same(grid, A.preview(ds, aug, path, {n = 3, k = 2, seed = 4})))
      assert.is_false(same(grid, A.preview(ds, aug, path, {n = 3, k = 2, seed = 5})))
    end)

    it("checks its arguments", function()
      assert_error(function() A.preview(3, A.Compose{}, path) end,
        "bad argument #1 to 'preview' (dataset expected (with #ds and ds:get(i)), got number)")
      assert_error(function() A.preview(ds, 3, path) end,
        "bad argument #2 to 'preview' (transform expected, got number)")
      assert_error(function() A.preview(ds, A.Compose{}, path, {n = 0}) end,
        "bad argument #4 to 'preview' (option 'n' must be a positive integer, got 0)")
      assert_error(function() A.preview(ds, A.Compose{}, path, {rows = 2}) end,
        "bad argument #4 to 'preview' (unknown option 'rows')")
    end)

    it("has a command-line tool", function()
      local out = os.tmpname()
      local p = io.popen(NNLUA .. " tools/augment_preview.lua --help")
      local text = p:read("a")
      assert.is_true(p:close())
      assert.is_truthy(text:find("--data fmnist", 1, true))
      local png = out .. ".png"
      p = io.popen(string.format("%s tools/augment_preview.lua --data fmnist --out %s --n 3 --k 4 2>&1",
        NNLUA, png))
      text = p:read("a")
      assert.is_true(p:close(), text)
      assert.is_truthy(text:find("wrote", 1, true), text)
      local info = nn.image.info(png)
      assert.are.equal(5 * 30 - 2, info.width)
      assert.are.equal(3 * 30 - 2, info.height)
      os.remove(png)
      os.remove(out)
      p = io.popen(NNLUA .. " tools/augment_preview.lua --data bogus --out x.png 2>&1")
      text = p:read("a")
      assert.is_falsy(p:close())
      assert.is_truthy(text:find("option --data must be 'fmnist' or 'folder'", 1, true), text)
    end)
  end)
end)
