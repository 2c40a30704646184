-- models/ham10000.lua end to end: tools/make_ham_like.lua writes a small
-- HAM10000-shaped dataset (PNG and JPEG images, a metadata CSV with lesion
-- groups) into a temporary folder; the script trains VGG16 on it for two
-- short epochs at 32x32, reports balanced accuracy and macro-F1, and writes
-- the confusion matrix PNG (a copy is kept at build/ham10000_confusion.png).
local nn = require "nn"

local build = os.getenv("NNLUA_BUILD") or "build"
local nnlua = build .. "/nnlua"

local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local f = io.popen(cmd .. " 2>&1; echo \"__status=$?\"")
  local out = f:read("a")
  f:close()
  local status = tonumber(out:match("__status=(%d+)%s*$"))
  return out:gsub("__status=%d+%s*$", ""), status
end

describe("models/ham10000.lua", function()
  local dir

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. sh(dir)))
  end)

  teardown(function()
    if dir then os.execute("rm -rf " .. sh(dir)) end
  end)

  it("generates a HAM10000-shaped dataset", function()
    local info = dofile("tools/make_ham_like.lua").generate(dir, {n = 150, seed = 1})
    assert.are.equal(150, info.n)
    assert.is_true(info.lesions < info.n) -- several images per lesion
    assert.is_true(info.jpeg > 0 and info.png > 0)
    local t = nn.data.read_csv(dir .. "/HAM10000_metadata.csv")
    assert.are.same({"lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"}, t.header)
    local counts = {}
    for _, dx in ipairs(t:column("dx")) do counts[dx] = (counts[dx] or 0) + 1 end
    assert.is_true(counts.nv > 0.5 * 150)
    for _, dx in ipairs{"akiec", "bcc", "bkl", "df", "mel", "vasc"} do assert.is_true(counts[dx] >= 6) end
  end)

  it("trains, reports balanced accuracy each epoch and writes the confusion matrix", function()
    local png = dir .. "/confusion.png"
    local out, status = run(string.format("%s models/ham10000.lua --csv %s --images %s --size 32 --epochs 2 "
      .. "--limit 64 --batch-size 16 --threads 2 --confusion %s", nnlua, sh(dir .. "/HAM10000_metadata.csv"),
      sh(dir), sh(png)))
    assert.are.equal(0, status, out)
    assert.matches("7 classes %(akiec, bcc, bkl, df, mel, nv, vasc%)", out)
    assert.matches("groups (lesion_id) in both training and validation: 0", out, 1, true)
    assert.matches("class weights: akiec", out, 1, true)
    assert.matches("epoch 1/2: .*val_balanced_accuracy %d%.%d+ val_macro_f1 %d%.%d+", out)
    assert.matches("epoch 2/2: .*val_balanced_accuracy", out)
    assert.matches("validation: accuracy [%d.]+%%, balanced accuracy %d%.%d+, macro%-F1 %d%.%d+", out)
    local img = nn.image.load(png)
    assert.are.equal(3, img:size(1))
    assert.is_true(img:size(2) > 200 and img:size(3) > 250)
    os.execute("mkdir -p " .. sh(build) .. " && cp " .. sh(png) .. " " .. sh(build .. "/ham10000_confusion.png"))
  end)

  it("has --help and rejects a missing --csv", function()
    local out, status = run(nnlua .. " models/ham10000.lua --help")
    assert.are.equal(0, status, out)
    for _, o in ipairs{"--csv", "--images", "--size", "--balance", "--confusion", "--epochs", "--limit", "--resume"} do
      assert.matches(o, out, 1, true)
    end
    out, status = run(nnlua .. " models/ham10000.lua --epochs 1")
    assert.are.equal(2, status, out)
    assert.matches("--csv PATH is required", out, 1, true)
    out, status = run(nnlua .. " models/ham10000.lua --csv " .. sh(dir .. "/none.csv"))
    assert.are_not.equal(0, status)
    assert.matches("none.csv: cannot open", out, 1, true)
  end)
end)
