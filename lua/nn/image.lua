-- nn.image: decoding and encoding images, resizing, and the decoded cache.
--
--   nn.image.load(path [, {channels=3, size=nil|n|{h,w}, draft=true}])
--       -> tensor [C,H,W] in [0,1].  PNG (1-16 bit; gray, gray+alpha, RGB,
--       RGBA, palette) or JPEG, recognised by content, not name.  channels
--       1, 3 or 4 converts as PIL's convert("L"/"RGB"/"RGBA").  size resizes
--       as torchvision's Resize (n: the smaller edge; {h, w}: exactly), with
--       antialiased bilinear filtering; draft=true lets a JPEG be decoded at
--       a reduced DCT scale first (much faster for large photos).
--   nn.image.save(path, t)                 8-bit PNG; t [C,H,W] (C 1, 3, 4)
--                                           or [H,W], clamped to [0,1]
--   nn.image.save_jpeg(path, t [, {quality=75}])   t with 1 or 3 channels
--   nn.image.resize(t, size) -> t [..., h, w]      torchvision's
--       resize(t, size, antialias=True) on float tensors
--   nn.image.info(path) -> {width=, height=, channels=, bit_depth=,
--       format="png"|"jpeg"}               from the header only
--
-- The decoded cache (an nn.ImageStore of uint8 pixels, see nn.data):
--   nn.image.new_store(n, c, h, w [, {mmap=path, labels=array}])
--       -> a zeroed store (in memory, or in a file mapped with mmap);
--          labels are 1-based
--   nn.image.load_into(store, i, path [, {draft=true}])   slot i (1-based)
--   nn.image.load_batch_into(store, indices, paths [, {draft=true}])
--       decodes in parallel (nn.set_num_threads); raises naming the first
--       failing file.
-- Images are resized to the store's size on the way in.  The store does not
-- record which slots are filled: callers keep that (e.g. an array of flags).
-- Every decoding error names the file: "image '<path>': <what is wrong>".
local _, core = ...

local image = {}
for k, v in pairs(core.image) do image[k] = v end

return image
