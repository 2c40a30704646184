-- nn.data's image datasets and helpers (lua/nn/datasets.lua): the CSV
-- reader (quotes, line breaks, CRLF, every malformed case with file:line),
-- ImageFolder and CSVImages on generated folders (class order, file order,
-- ignored files, the decoded cache, bad input), split (proportions,
-- stratification, groups never in two subsets, reproducibility),
-- class_weights and the weighted random sampler.
local nn = require "nn"

local function error_of(f)
  local ok, err = pcall(f)
  assert(not ok, "expected an error")
  return tostring(err)
end

local function assert_error(f, ...)
  local msg = error_of(f)
  for _, part in ipairs({...}) do
    assert(msg:find(part, 1, true), "error message\n  " .. msg .. "\nlacks\n  " .. part)
  end
end

local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. sh(d)))
  return d
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A solid-color image [3, h, w] with value v in channel 1.
local function solid(v, h, w)
  local t = nn.zeros(3, h or 6, w or 8)
  t:narrow(1, 1, 1):fill_(v)
  return t
end

local dirs = {}
local function newdir()
  local d = tmpdir()
  dirs[#dirs + 1] = d
  return d
end

teardown(function()
  for _, d in ipairs(dirs) do os.execute("rm -rf " .. sh(d)) end
end)

-- ---------------------------------------------------------------------------

describe("CSV", function()
  it("parses quoted fields, escaped quotes, commas and line breaks in quotes", function()
    local t = nn.data.parse_csv('id,text,n\r\n1,"a, b",2\r\n2,"say ""hi""",3\r\n3,"two\nlines",4\r\n4,,5',
      "t.csv")
    assert.are.same({"id", "text", "n"}, t.header)
    assert.are.equal(4, #t.rows)
    assert.are.same({"1", "a, b", "2"}, t.rows[1])
    assert.are.equal('say "hi"', t.rows[2][2])
    assert.are.equal("two\nlines", t.rows[3][2])
    assert.are.equal("", t.rows[4][2])
    assert.are.same({2, 3, 4, 6}, t.lines)
    assert.are.same({"2", "3", "4", "5"}, t:column("n"))
  end)

  it("accepts LF, CRLF and CR line ends, a BOM and blank lines", function()
    for _, text in ipairs{"a,b\n1,2\n3,4\n", "a,b\r\n1,2\r\n3,4", "a,b\r1,2\r3,4\r", "\239\187\191a,b\n\n1,2\n3,4\n\n"} do
      local t = nn.data.parse_csv(text)
      assert.are.same({"a", "b"}, t.header)
      assert.are.same({{"1", "2"}, {"3", "4"}}, t.rows)
    end
  end)

  it("names the file and line of every malformed case", function()
    local cases = {
      {'a,b\n1,2\n3,"open\n4,5\n', "bad.csv:3: unterminated quoted field"},
      {'a,b\n1,x"y\n', "bad.csv:2: quote inside unquoted field 2"},
      {'a,b\n"x"y,1\n', "bad.csv:2: unexpected 'y' after the closing quote of field 1"},
      {'a,b,c\n1,2,3\n4,5\n', "bad.csv:3: expected 3 fields (as in the header), got 2"},
      {'a,b\n1,2,3\n', "bad.csv:2: expected 2 fields (as in the header), got 3"},
      {'a,b\n1,"x\0"\n', "bad.csv:2: NUL byte"},
      {'', "bad.csv: empty file (no header row)"},
    }
    for _, c in ipairs(cases) do
      assert_error(function() nn.data.parse_csv(c[1], "bad.csv") end, c[2])
    end
  end)

  it("reads files, naming them in errors", function()
    local d = newdir()
    write(d .. "/HAM10000_metadata.csv", 'lesion_id,image_id,dx\n' .. string.rep("HAM_1,ISIC_1,nv\n", 15)
      .. 'HAM_2,"ISIC_2,nv\n')
    assert_error(function() nn.data.read_csv(d .. "/HAM10000_metadata.csv") end,
      d .. "/HAM10000_metadata.csv:17: unterminated quoted field")
    assert_error(function() nn.data.read_csv(d .. "/none.csv") end, "none.csv: cannot open: No such file")
    write(d .. "/ok.csv", "x\n1\n")
    assert.are.same({{"1"}}, nn.data.read_csv(d .. "/ok.csv").rows)
    assert_error(function() nn.data.read_csv(d .. "/ok.csv"):column("y") end, "no column 'y'", "(columns: x)")
  end)
end)

-- ---------------------------------------------------------------------------

describe("ImageFolder", function()
  local root

  setup(function()
    root = newdir()
    -- Created out of order; names sort as cat < dog < zebra.
    for _, c in ipairs{"zebra", "cat", "dog"} do assert(os.execute("mkdir -p " .. sh(root .. "/" .. c))) end
    nn.image.save(root .. "/dog/b.png", solid(0.2))
    nn.image.save(root .. "/dog/a.PNG", solid(0.1))
    nn.image.save(root .. "/cat/x.png", solid(0.3, 10, 12))
    nn.image.save_jpeg(root .. "/zebra/z1.jpg", solid(0.8))
    nn.image.save_jpeg(root .. "/zebra/z0.JPEG", solid(0.7))
    assert(os.execute("mkdir -p " .. sh(root .. "/zebra/sub")))
    nn.image.save(root .. "/zebra/sub/deep.png", solid(0.9))
    write(root .. "/zebra/README.txt", "not an image")
    write(root .. "/dog/notes.json", "{}")
    nn.image.save(root .. "/stray.png", solid(0.5)) -- files in root are ignored
  end)

  it("has one class per subfolder, sorted, and the image files sorted", function()
    local ds = nn.data.ImageFolder(root)
    assert.are.same({"cat", "dog", "zebra"}, ds.classes)
    assert.are.equal(6, #ds)
    local names = {}
    for i = 1, #ds do names[i] = ds:path(i):sub(#root + 2) end
    -- torchvision's order: directories by path, files sorted within each
    -- (uppercase before lowercase, bytewise).
    assert.are.same({"cat/x.png", "dog/a.PNG", "dog/b.png", "zebra/z0.JPEG", "zebra/z1.jpg",
                     "zebra/sub/deep.png"}, names)
    assert.are.same({1, 2, 2, 3, 3, 3}, ds:labels())
    assert.are.equal(2, ds.class_to_idx.dog)
  end)

  it("loads each image at its own size without `size`", function()
    local ds = nn.data.ImageFolder(root)
    local x, y = ds:get(1)
    assert.are.same({3, 10, 12}, x:shape())
    assert.are.equal(1, y)
    assert.is_true(math.abs(x:get(1, 1, 1) - 0.3) < 0.003)
    local x2 = ds:get(2)
    assert.are.same({3, 6, 8}, x2:shape())
    assert_error(function() ds:batch({1, 2}) end, "images of different sizes", "give the dataset a size")
    local xb, yb = ds:batch({2, 3})
    assert.are.same({2, 3, 6, 8}, xb:shape())
    assert.are.same({2, 2}, yb:totable())
  end)

  it("resizes with `size` and serves later reads from the decoded cache", function()
    local ds = nn.data.ImageFolder(root, {size = 4})
    local x, y = ds:batch({1, 2, 3, 4, 5, 6})
    assert.are.same({6, 3, 4, 4}, x:shape())
    assert.are.same({1, 2, 2, 3, 3, 3}, y:totable())
    assert.are.equal(6, ds.decoded)
    local x2 = ds:batch({6, 5, 4, 3, 2, 1})
    assert.are.equal(6, ds.decoded) -- nothing decoded again
    assert.are.equal(0, (x2:narrow(1, 1, 1) - x:narrow(1, 6, 1)):abs():max():item())
    local g, gy = ds:get(2)
    assert.are.same({3, 4, 4}, g:shape())
    assert.are.equal(2, gy)
    assert.is_true(math.abs(g:get(1, 2, 2) - 0.1) < 0.003)
    -- Through a DataLoader (the batch fast path) and a subset.
    local seen = 0
    for xb, yb in nn.data.DataLoader(ds:subset({4, 5, 6}), {batch_size = 2}) do
      seen = seen + yb:size(1)
      assert.are.equal(4, xb:size(3))
    end
    assert.are.equal(3, seen)
    assert.are.equal(6, ds.decoded)
  end)

  it("decodes every time with cache=false, and caches in a mapped file with mmap:", function()
    local ds = nn.data.ImageFolder(root, {size = {4, 5}, cache = false})
    ds:batch({1, 2})
    ds:batch({1, 2})
    assert.are.equal(4, ds.decoded)
    local path = newdir() .. "/cache.u8"
    local m = nn.data.ImageFolder(root, {size = {4, 5}, cache = "mmap:" .. path})
    local a = m:batch({1, 2, 3})
    local b = ds:batch({1, 2, 3})
    assert.are.equal(0, (a - b):abs():max():item())
    local f = assert(io.open(path, "rb"))
    assert.are.equal(6 * 3 * 4 * 5, f:seek("end"))
    f:close()
    m:preload()
    assert.are.equal(6, m.decoded)
  end)

  it("rejects an empty class folder, naming it, and other bad roots", function()
    local d = newdir()
    assert(os.execute("mkdir -p " .. sh(d .. "/a") .. " " .. sh(d .. "/b") .. " " .. sh(d .. "/c")))
    nn.image.save(d .. "/a/1.png", solid(0.5))
    write(d .. "/b/readme.txt", "x")
    nn.image.save(d .. "/c/1.png", solid(0.5))
    assert_error(function() nn.data.ImageFolder(d) end,
      "ImageFolder: no image files (.jpg, .jpeg, .png) in the class folder " .. d .. "/b")
    assert_error(function() nn.data.ImageFolder(d .. "/a") end, "no class folders in " .. d .. "/a")
    assert_error(function() nn.data.ImageFolder(d .. "/nope") end, "is not a folder (it does not exist)")
    assert_error(function() nn.data.ImageFolder(d, {size = 0}) end,
      "bad argument #2 to 'ImageFolder' (option 'size' must be a size")
    assert_error(function() nn.data.ImageFolder(d, {channels = 2}) end, "option 'channels' must be 1, 3 or 4")
    assert_error(function() nn.data.ImageFolder(d, {colour = 1}) end, "unknown option 'colour'")
    assert_error(function() nn.data.ImageFolder(d, {cache = "mmap:/tmp/x"}) end, "option 'cache' needs option 'size'")
  end)
end)

-- ---------------------------------------------------------------------------

describe("CSVImages", function()
  local d

  setup(function()
    d = newdir()
    assert(os.execute("mkdir -p " .. sh(d .. "/img") .. " " .. sh(d .. "/img2")))
    nn.image.save(d .. "/img/i1.png", solid(0.1))
    nn.image.save_jpeg(d .. "/img/i2.jpg", solid(0.2))
    nn.image.save_jpeg(d .. "/img/i3.jpeg", solid(0.3))
    nn.image.save(d .. "/img/i4.png", solid(0.4))
    nn.image.save_jpeg(d .. "/img2/i5.JPG", solid(0.5))
    nn.image.save(d .. "/img/other.png", solid(0.6))
    write(d .. "/meta.csv", table.concat({
      "lesion_id,image_id,dx,site",
      "L1,i1,nv,back",
      "L1,i2,nv,\"arm, left\"",
      "L2,i3,mel,back",
      "L3,i4,bkl,\"multi",
      "line\"",
      "L4,i5,nv,face",
    }, "\r\n") .. "\r\n")
  end)

  local function make(extra)
    local o = {csv = d .. "/meta.csv", images = {d .. "/img", d .. "/img2"}, id_column = "image_id",
               label_column = "dx"}
    for k, v in pairs(extra or {}) do o[k] = v end
    return nn.data.CSVImages(o)
  end

  it("labels from a column, classes sorted, images found by id with any extension", function()
    local ds = make()
    assert.are.same({"bkl", "mel", "nv"}, ds.classes)
    assert.are.equal(5, #ds)
    assert.are.same({3, 3, 2, 1, 3}, ds:labels())
    assert.are.same({"i1.png", "i2.jpg", "i3.jpeg", "i4.png", "i5.JPG"}, (function()
      local out = {}
      for i = 1, #ds do out[i] = ds:path(i):match("[^/]+$") end
      return out
    end)())
    assert.are.same({2, 3, 4, 5, 7}, ds.lines)
    assert.are.same({"back", "arm, left", "back", "multi\r\nline", "face"}, ds:column("site"))
    local x, y = ds:get(2)
    assert.are.same({3, 6, 8}, x:shape())
    assert.are.equal(3, y)
  end)

  it("sorts numeric labels numerically and accepts a fixed class list", function()
    write(d .. "/num.csv", "image_id,label\ni1,10\ni2,9\ni3,2\n")
    local ds = nn.data.CSVImages{csv = d .. "/num.csv", images = d .. "/img", id_column = "image_id",
                                 label_column = "label"}
    assert.are.same({"2", "9", "10"}, ds.classes)
    assert.are.same({3, 2, 1}, ds:labels())
    local fixed = make({classes = {"akiec", "bkl", "mel", "nv"}})
    assert.are.same({4, 4, 3, 2, 4}, fixed:labels())
    assert_error(function() make({classes = {"nv", "mel"}}) end,
      "meta.csv:5: unknown class 'bkl' in column dx (classes: nv, mel)")
  end)

  it("uses the decoded cache with `size`", function()
    local ds = make({size = {5, 5}})
    local x, y = ds:batch({5, 1, 5})
    assert.are.same({3, 3, 5, 5}, x:shape())
    assert.are.same({3, 3, 3}, y:totable())
    assert.are.equal(2, ds.decoded)
    ds:batch({1, 2, 3, 4, 5})
    ds:batch({1, 2, 3, 4, 5})
    assert.are.equal(5, ds.decoded)
    assert.is_true(math.abs(x:get(2, 1, 3, 3) - 0.1) < 0.01)
  end)

  it("names the row and id of a missing image, or skips such rows and counts them", function()
    write(d .. "/gap.csv", "image_id,dx\ni1,nv\ni9,mel\ni2,nv\nq7,bkl\n")
    assert_error(function()
      nn.data.CSVImages{csv = d .. "/gap.csv", images = d .. "/img", id_column = "image_id", label_column = "dx"}
    end, "gap.csv:3: no image for image_id 'i9' in " .. d .. "/img (tried .jpg, .jpeg, .png)",
      'missing="skip"')
    local ds = nn.data.CSVImages{csv = d .. "/gap.csv", images = d .. "/img", id_column = "image_id",
                                 label_column = "dx", missing = "skip", quiet = true}
    assert.are.equal(2, #ds)
    assert.are.equal(2, ds.skipped)
    assert.are.same({"nv"}, ds.classes)
  end)

  it("names the file, CSV line and id of an image that cannot be decoded", function()
    write(d .. "/img/bad.png", "not a png at all")
    write(d .. "/bad.csv", "image_id,dx\ni1,nv\nbad,mel\n")
    for _, size in ipairs{false, 4} do
      local ds = nn.data.CSVImages{csv = d .. "/bad.csv", images = d .. "/img", id_column = "image_id",
                                   label_column = "dx", size = size or nil}
      assert.are.equal(2, #ds)
      assert_error(function() ds:get(2) end, "image '" .. d .. "/img/bad.png'", "(" .. d .. "/bad.csv:3, image_id 'bad')")
      assert_error(function() ds:batch({1, 2}) end, "bad.csv:3, image_id 'bad'")
    end
    os.remove(d .. "/img/bad.png")
  end)

  it("honours `extension`", function()
    assert.are.equal(3, #nn.data.CSVImages{csv = d .. "/meta.csv", images = d .. "/img", id_column = "image_id",
      label_column = "dx", extension = "png", missing = "skip", quiet = true} + 1)
    assert_error(function()
      nn.data.CSVImages{csv = d .. "/meta.csv", images = d .. "/img", id_column = "image_id",
                        label_column = "dx", extension = ".png"}
    end, "meta.csv:3: no image for image_id 'i2'", "(tried .png)")
  end)

  it("rejects bad tables and options clearly", function()
    assert_error(function() make({label_column = "diagnosis"}) end,
      "CSVImages: no column 'diagnosis' in " .. d .. "/meta.csv (columns: lesion_id, image_id, dx, site)")
    assert_error(function() make({group_column = "patient"}) end, "no column 'patient'")
    write(d .. "/empty_label.csv", "image_id,dx\ni1,nv\ni2,\n")
    assert_error(function()
      nn.data.CSVImages{csv = d .. "/empty_label.csv", images = d .. "/img", id_column = "image_id", label_column = "dx"}
    end, "empty_label.csv:3: empty dx (the label)")
    write(d .. "/broken.csv", "image_id,dx\ni1,nv\ni2,nv,extra\n")
    assert_error(function()
      nn.data.CSVImages{csv = d .. "/broken.csv", images = d .. "/img", id_column = "image_id", label_column = "dx"}
    end, "broken.csv:3: expected 2 fields (as in the header), got 3")
    assert_error(function() make({images = d .. "/none"}) end, "the images folder " .. d .. "/none does not exist")
    assert_error(function() nn.data.CSVImages{csv = d .. "/meta.csv"} end, "option 'images' is required")
    assert_error(function() make({missing = "ignore"}) end, "option 'missing' must be \"error\" or \"skip\"")
    assert_error(function() nn.data.CSVImages("meta.csv") end, "bad argument #1 to 'CSVImages' (options table expected")
  end)
end)

-- ---------------------------------------------------------------------------

-- A dataset of n samples with the given labels (and no images).
local Toy = nn.data.dataset_class("Toy")
function Toy:size() return #self.y end
function Toy:get(i) return nn.tensor({i}), self.y[i] end
function Toy:labels() return table.move(self.y, 1, #self.y, 1, {}) end

local function toy(counts)
  local y = {}
  for c, n in ipairs(counts) do for _ = 1, n do y[#y + 1] = c end end
  -- Interleave deterministically so classes are not in blocks.
  local out = {}
  for i = 1, #y do out[i] = y[(i * 7919) % #y + 1] end
  return setmetatable({y = out}, Toy)
end

local function count_classes(subset, C)
  local n = {}
  for c = 1, C do n[c] = 0 end
  for _, y in ipairs(subset:labels()) do n[y] = n[y] + 1 end
  return n
end

describe("split", function()
  it("stratifies: exact subset sizes and each class in proportion", function()
    local ds = toy({670, 110, 110, 50, 33, 14, 13})
    local parts = ds:split{0.8, 0.2}
    assert.are.equal(2, #parts)
    assert.are.equal(800, #parts[1])
    assert.are.equal(200, #parts[2])
    local a, b = count_classes(parts[1], 7), count_classes(parts[2], 7)
    local want = {670, 110, 110, 50, 33, 14, 13}
    for c = 1, 7 do
      assert.are.equal(want[c], a[c] + b[c])
      assert.is_true(math.abs(b[c] - want[c] * 0.2) <= 1, "class " .. c .. ": " .. b[c])
    end
    -- Disjoint and covering.
    local seen = {}
    for _, p in ipairs(parts) do
      for _, i in ipairs(p.indices) do
        assert.is_nil(seen[i])
        seen[i] = true
      end
    end
    for i = 1, #ds do assert.is_true(seen[i]) end
    -- Three parts and sizes instead of fractions.
    local three = ds:split{0.7, 0.2, 0.1}
    assert.are.same({700, 200, 100}, {#three[1], #three[2], #three[3]})
    local sized = ds:split{900, 100}
    assert.are.same({900, 100}, {#sized[1], #sized[2]})
  end)

  it("is reproducible from the seed", function()
    local ds = toy({60, 30, 10})
    local a, b = ds:split{0.5, 0.5, seed = 3}, ds:split{0.5, 0.5, seed = 3}
    assert.are.same(a[1].indices, b[1].indices)
    local c = ds:split{0.5, 0.5, seed = 4}
    assert.are_not.same(a[1].indices, c[1].indices)
    local plain = ds:split{0.5, 0.5, stratify = false, seed = 1}
    assert.are.equal(50, #plain[1])
  end)

  it("keeps every group in one subset and classes close to their proportions", function()
    local ds = toy({400, 120, 80})
    -- Groups of 1..4 consecutive samples of the same class, as lesions.
    local key, g, run = {}, 0, 0
    local by_class = {}
    for i = 1, #ds do
      local c = ds.y[i]
      by_class[c] = by_class[c] or {}
      table.insert(by_class[c], i)
    end
    for _, members in pairs(by_class) do
      for _, i in ipairs(members) do
        if run == 0 then g, run = g + 1, (g % 4) + 1 end
        key[i] = "G" .. g
        run = run - 1
      end
      run = 0
    end
    for _, seed in ipairs{0, 1, 2} do
      local parts = ds:split{0.8, 0.2, group = function(i) return key[i] end, seed = seed}
      local where = {}
      for k, p in ipairs(parts) do
        for _, i in ipairs(p.indices) do
          assert.is_true(where[key[i]] == nil or where[key[i]] == k, "group " .. key[i] .. " in two subsets")
          where[key[i]] = k
        end
      end
      assert.are.equal(600, #parts[1] + #parts[2])
      local v = count_classes(parts[2], 3)
      assert.is_true(math.abs(v[1] - 80) <= 4 and math.abs(v[2] - 24) <= 4 and math.abs(v[3] - 16) <= 4,
        table.concat(v, ","))
    end
    local a = ds:split{0.8, 0.2, group = function(i) return key[i] end, seed = 7}
    local b = ds:split{0.8, 0.2, group = function(i) return key[i] end, seed = 7}
    assert.are.same(a[2].indices, b[2].indices)
  end)

  it("groups by a CSV column of CSVImages (and of its subsets)", function()
    local d = newdir()
    local lines = {"lesion_id,image_id,dx"}
    for i = 1, 60 do
      nn.image.save(string.format("%s/im%d.png", d, i), solid(i / 60, 2, 2))
      lines[#lines + 1] = string.format("L%d,im%d,%s", (i - 1) // 3, i, i % 4 == 0 and "mel" or "nv")
    end
    write(d .. "/m.csv", table.concat(lines, "\n"))
    local ds = nn.data.CSVImages{csv = d .. "/m.csv", images = d, id_column = "image_id", label_column = "dx",
                                 group_column = "lesion_id"}
    local train, val = table.unpack(ds:split{0.75, 0.25, seed = 5}) -- group_column by default
    local in_train = {}
    for _, l in ipairs(train:column("lesion_id")) do in_train[l] = true end
    for _, l in ipairs(val:column("lesion_id")) do assert.is_nil(in_train[l]) end
    assert.are.equal(45, #train)
    -- A split of a subset still sees the column; group=false turns it off.
    local inner = train:split{0.5, 0.5, group = "lesion_id"}
    local a = {}
    for _, l in ipairs(inner[1]:column("lesion_id")) do a[l] = true end
    for _, l in ipairs(inner[2]:column("lesion_id")) do assert.is_nil(a[l]) end
    local free = ds:split{0.5, 0.5, group = false}
    assert.are.equal(30, #free[1])
    assert_error(function() toy({5, 5}):split{0.5, 0.5, group = "lesion_id"} end,
      "split: group 'lesion_id' needs a dataset with CSV metadata")
  end)

  it("rejects bad fractions", function()
    local ds = toy({5, 5})
    assert_error(function() ds:split{0.5, 0.4} end,
      "bad argument #1 to 'split' (the fractions must sum to 1 (or the sizes to #ds = 10), got 0.9)")
    assert_error(function() ds:split{-0.5, 1.5} end, "part 1 must be a non-negative number")
    assert_error(function() ds:split{} end, "expected fractions such as {0.8, 0.2}")
    assert_error(function() ds:split{0.5, 0.5, strat = true} end, "unknown option 'strat'")
    assert_error(function() ds:split(0.5) end, "table of fractions expected")
  end)
end)

-- ---------------------------------------------------------------------------

describe("class_weights", function()
  it("is n_samples / (n_classes * count), as sklearn's 'balanced'", function()
    local w = nn.data.class_weights(toy({6, 3, 1}), "balanced"):totable()
    local want = {10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1)}
    for c = 1, 3 do assert.is_true(math.abs(w[c] - want[c]) < 1e-6) end
    local from_labels = nn.data.class_weights({1, 1, 2, 2, 2, 2}, "balanced"):totable()
    assert.is_true(math.abs(from_labels[1] - 1.5) < 1e-6 and math.abs(from_labels[2] - 0.75) < 1e-6)
  end)

  it("names a class without samples", function()
    local ds = toy({4, 0, 2})
    ds.classes = {"akiec", "bcc", "bkl"}
    assert_error(function() nn.data.class_weights(ds, "balanced") end,
      "class_weights: class 'bcc' (label 2) has no samples")
    assert_error(function() nn.data.class_weights({1, 1}, "balanced", 3) end, "class 2 has no samples")
    assert_error(function() nn.data.class_weights(ds, "inverse") end, "mode must be \"balanced\"")
    assert_error(function() nn.data.class_weights({1, 0}, "balanced") end, "label 0 of sample 2 is not a class index")
  end)
end)

describe("WeightedRandomSampler", function()
  it("draws indices in proportion to the weights, reproducibly", function()
    local s = nn.data.WeightedRandomSampler({1, 2, 0, 7}, 20000, {seed = 11})
    local idx = s:indices(1)
    assert.are.equal(20000, #idx)
    local n = {0, 0, 0, 0}
    for _, i in ipairs(idx) do n[i] = n[i] + 1 end
    assert.are.equal(0, n[3])
    for i, w in ipairs{0.1, 0.2, 0, 0.7} do
      assert.is_true(math.abs(n[i] / 20000 - w) < 0.015, i .. ": " .. n[i])
    end
    assert.are.same(idx, s:indices(1))
    assert.are_not.same(idx, s:indices(2))
    assert.are.same(idx, nn.data.WeightedRandomSampler(nn.tensor({1, 2, 0, 7}), 20000, {seed = 11}):indices(1))
  end)

  it("draws each index at most once without replacement", function()
    local s = nn.data.WeightedRandomSampler({1, 1, 1, 100, 0}, 4, {replacement = false, seed = 1})
    local idx = s:indices(1)
    table.sort(idx)
    assert.are.same({1, 2, 3, 4}, idx)
    -- The heavy index comes first almost always.
    local first = 0
    for e = 1, 200 do if s:indices(e)[1] == 4 then first = first + 1 end end
    assert.is_true(first > 180)
  end)

  it("works as a DataLoader sampler, drawing from nn's RNG without a seed", function()
    local ds = toy({2, 2})
    local s = nn.data.WeightedRandomSampler({1, 1, 1, 1}, 10)
    local loader = nn.data.DataLoader(ds, {batch_size = 4, sampler = s})
    assert.are.equal(3, #loader)
    local total = 0
    for x in loader do total = total + x:size(1) end
    assert.are.equal(10, total)
    nn.manual_seed(5)
    local a = s:indices(1)
    nn.manual_seed(5)
    assert.are.same(a, s:indices(1))
  end)

  it("balanced_sampler draws each class about equally often", function()
    local ds = toy({90, 9, 1})
    local s = nn.data.balanced_sampler(ds, {num_samples = 30000, seed = 2})
    local n = {0, 0, 0}
    for _, i in ipairs(s:indices(1)) do n[ds.y[i]] = n[ds.y[i]] + 1 end
    for c = 1, 3 do assert.is_true(math.abs(n[c] / 30000 - 1 / 3) < 0.02, c .. ": " .. n[c]) end
    assert.are.equal(100, nn.data.balanced_sampler(ds).num_samples)
  end)

  it("rejects bad weights and sizes", function()
    assert_error(function() nn.data.WeightedRandomSampler({1, -1}, 2) end,
      "bad argument #1 to 'WeightedRandomSampler' (weight 2 must be a finite non-negative number, got -1)")
    assert_error(function() nn.data.WeightedRandomSampler({0, 0}, 2) end, "the weights sum to zero")
    assert_error(function() nn.data.WeightedRandomSampler({1, 1}, 0) end, "num_samples must be a positive integer")
    assert_error(function() nn.data.WeightedRandomSampler({1, 0, 1}, 3, {replacement = false}) end,
      "cannot draw 3 samples without replacement from 2 positive weights")
    assert_error(function() nn.data.WeightedRandomSampler({1}, 1, {seed = "x"}) end, "option 'seed' must be an integer")
  end)
end)
