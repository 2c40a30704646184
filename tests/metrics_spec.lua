-- nn.metrics: confusion matrix, per-class precision/recall/F1, balanced
-- accuracy and macro-F1 against numbers worked out by hand with sklearn's
-- definitions (zero_division=0; balanced accuracy over the classes present
-- in target; macro-F1 over the classes present in target or pred), their
-- errors, nn.fit/nn.evaluate reporting them, the canvas binding (nn.plot)
-- and the confusion-matrix PNG.
local nn = require "nn"
local M = nn.metrics

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

local function near(a, b, tol) return math.abs(a - b) <= (tol or 1e-9) end

local function assert_near_array(want, got, tol)
  assert.are.equal(#want, #got)
  for i = 1, #want do
    assert(near(want[i], got[i], tol), string.format("entry %d: expected %.9g, got %.9g", i, want[i], got[i]))
  end
end

-- Four classes, class 4 in neither pred nor target.
--   true 1: predicted 1,2,1,1   true 2: 2,3   true 3: 3,3,1,2
local target = {1, 1, 1, 2, 2, 3, 3, 3, 3, 1}
local pred = {1, 2, 1, 2, 3, 3, 3, 1, 2, 1}

describe("nn.metrics", function()
  it("confusion: rows are the true class", function()
    local cm = M.confusion(nn.tensor(pred), nn.tensor(target), 4)
    assert.are.same({4, 4}, cm:shape())
    assert.are.same({{3, 1, 0, 0}, {0, 1, 1, 0}, {1, 1, 2, 0}, {0, 0, 0, 0}}, cm:totable())
    -- Lua arrays work as well; n_classes defaults to the largest label.
    assert.are.same({3, 3}, M.confusion(pred, target):shape())
  end)

  it("per_class: precision, recall, F1 and support (0 where undefined)", function()
    local r = M.per_class(nn.tensor(pred), nn.tensor(target), 4)
    assert_near_array({3 / 4, 1 / 3, 2 / 3, 0}, r.precision)
    assert_near_array({3 / 4, 1 / 2, 2 / 4, 0}, r.recall)
    -- F1 = 2 tp / (2 tp + fp + fn)
    assert_near_array({6 / 8, 2 / 5, 4 / 7, 0}, r.f1)
    assert.are.same({4, 2, 4, 0}, r.support)
  end)

  it("accuracy, balanced_accuracy and macro_f1", function()
    assert.is_true(near(0.6, M.accuracy(pred, target, 4)))
    assert.is_true(near((0.75 + 0.5 + 0.5) / 3, M.balanced_accuracy(pred, target, 4)))
    assert.is_true(near((6 / 8 + 2 / 5 + 4 / 7) / 3, M.macro_f1(pred, target, 4)))
    -- A class predicted but absent from target: left out of balanced
    -- accuracy (sklearn warns and drops it), counted (F1 = 0) in macro-F1.
    local t, p = {1, 1, 2, 2}, {1, 3, 2, 2}
    assert.is_true(near(0.75, M.balanced_accuracy(p, t, 3)))
    assert.is_true(near((2 / 3 + 1 + 0) / 3, M.macro_f1(p, t, 3)))
    -- Perfect and constant predictions.
    assert.are.equal(1, M.balanced_accuracy({1, 2, 3}, {1, 2, 3}, 3))
    assert.is_true(near(1 / 3, M.balanced_accuracy({1, 1, 1, 1, 1}, {1, 1, 1, 2, 3}, 3)))
    assert.is_true(near((2 * 3 / (2 * 3 + 2)) / 3, M.macro_f1({1, 1, 1, 1, 1}, {1, 1, 1, 2, 3}, 3)))
  end)

  it("report: a per-class table with averages", function()
    local text = M.report(pred, target, {"akiec", "bcc", "bkl", "df"})
    assert.matches("akiec%s+0%.7500%s+0%.7500%s+0%.7500%s+4", text)
    assert.matches("accuracy%s+0%.6000%s+10", text)
    assert.matches("macro avg", text, 1, true)
  end)

  it("raises clear errors", function()
    assert_error(function() M.confusion({1, 2}, {1}, 2) end,
      "bad argument #2 to 'confusion' (pred and target have different lengths (2 and 1))")
    assert_error(function() M.confusion({1, 5}, {1, 2}, 4) end,
      "bad argument #1 to 'confusion' (pred[2] = 5 is not a class index in 1..4)")
    assert_error(function() M.balanced_accuracy({1, 1}, {0, 1}, 2) end,
      "bad argument #2 to 'balanced_accuracy' (target[1] = 0 is not a class index in 1..2)")
    assert_error(function() M.macro_f1({1.5}, {1}, 2) end, "pred[1] = 1.5 is not a class index")
    assert_error(function() M.per_class({1}, {1}, 0) end, "n_classes must be a positive integer, got 0")
    assert_error(function() M.accuracy(nn.zeros(2, 2), {1, 1}) end, "pred must be a tensor [N], got [2, 2]")
    assert_error(function() M.accuracy("x", {1}) end, "pred must be a tensor [N] or an array of class indices")
    assert_error(function() M.accuracy({}, {}) end, "pred and target are empty")
  end)
end)

describe("nn.fit and nn.evaluate report the metrics asked for", function()
  -- Two separable classes in 2-D.
  local Points = nn.data.dataset_class("Points")
  function Points:size() return 40 end
  function Points:get(i)
    local c = i % 2 + 1
    return nn.tensor({c == 1 and -1 - i / 40 or 1 + i / 40, (i % 5) / 5}), c
  end
  local ds = setmetatable({classes = {"left", "right"}}, Points)

  it("per epoch in the history and the summary line", function()
    nn.manual_seed(0)
    local model = nn.Sequential{nn.Linear(2, 2)}
    local lines = {}
    local out = {write = function(_, ...) for _, s in ipairs({...}) do lines[#lines + 1] = s end end,
                 flush = function() end}
    local history = nn.fit{
      model = model, loss = nn.CrossEntropyLoss(),
      optimizer = nn.optim.SGD(model:parameters(), {lr = 0.5}),
      train = nn.data.DataLoader(ds, {batch_size = 8}), val = nn.data.DataLoader(ds, {batch_size = 8}),
      epochs = 2, metrics = {"balanced_accuracy", "macro_f1"}, out = out,
    }
    assert.is_number(history[2].val_balanced_accuracy)
    assert.is_number(history[2].val_macro_f1)
    local text = table.concat(lines)
    assert.matches("val_balanced_accuracy %d%.%d%d%d%d", text)
    assert.matches("val_macro_f1 %d%.%d%d%d%d", text)
    local r = nn.evaluate(model, nn.data.DataLoader(ds, {batch_size = 8}),
      {metrics = {"confusion", "balanced_accuracy"}})
    assert.are.same({2, 2}, r.confusion:shape())
    assert.are.equal(40, r.confusion:sum():item())
    assert.is_true(near(r.balanced_accuracy, M.balanced_accuracy(r.predictions, r.targets, 2)))
  end)
end)

-- ---------------------------------------------------------------------------

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

describe("nn.plot canvas", function()
  it("draws, reads pixels and measures text", function()
    local c = nn.plot.Canvas(40, 30)
    assert.are.same({40, 30}, {c:size()})
    assert.are.same({255, 255, 255}, {c:pixel(0, 0)})
    c:fill_rect(1, 1, 3, 3, "#ff8000")
    assert.are.same({255, 128, 0}, {c:pixel(2, 2)})
    c:line(0, 10, 39, 10, {0, 0, 255}, {width = 1})
    assert.are.same({0, 0, 255}, {c:pixel(20, 10)})
    c:polyline({0, 10, 20}, {20, 25, 20}, 0x00ff00)
    assert.are.same({0, 255, 0}, {c:pixel(10, 25)})
    c:circle(30, 25, 2, "#000")
    assert.are.same({0, 0, 0}, {c:pixel(30, 25)})
    assert.is_nil(c:pixel(40, 0))
    assert.are.same({11, 9}, {nn.plot.text_size("ab")})
    assert.are.same({22, 18}, {c:text_size("ab", 2)})
    c:text(39, 0, "x", "#000000", {align = "right"})
    assert.matches("nn.Canvas%(40 x 30%)", tostring(c))
  end)

  it("rejects bad colors, options and sizes", function()
    local c = nn.plot.Canvas(4, 4)
    assert_error(function() c:fill_rect(0, 0, 1, 1, "red") end, "color expected")
    assert_error(function() c:fill_rect(0, 0, 1, 1, {0, 0, 256}) end, "color expected")
    assert_error(function() c:line(0, 0, 1, 1, 0, {thickness = 2}) end, "unknown option 'thickness'")
    assert_error(function() c:text(0, 0, "x", 0, {align = "middle"}) end, "option 'align' must be")
    assert_error(function() nn.plot.Canvas(0, 4) end, "width must be in 1..16384, got 0")
    assert_error(function() c:save("/nonexistent/dir/x.png") end, "cannot create")
  end)
end)

describe("confusion_png", function()
  it("writes a heat map that nn.image.load reads back", function()
    local cm = M.confusion({1, 2, 2, 3, 1, 1, 3, 3}, {1, 2, 3, 3, 2, 1, 3, 1}, 3)
    local path = tmpname() .. ".png"
    M.confusion_png(cm, {"akiec", "bcc", "melanoma"}, path, {title = "test"})
    local img = nn.image.load(path)
    local _, h, w = table.unpack(img:shape())
    assert.is_true(w >= 150 and w <= 600 and h >= 150 and h <= 600, w .. "x" .. h)
    -- White background in the corner, dark ink somewhere (the labels).
    assert.are.equal(1, img:get(1, 1, 1))
    assert.is_true(-(img * -1):max():item() < 0.2)
    local info = nn.image.info(path)
    assert.are.equal("png", info.format)
    os.remove(path)
    -- Normalized, long names (drawn vertically), many classes.
    local names, big = {}, {}
    for c = 1, 9 do
      names[c] = "class number " .. c
      big[c] = {}
      for j = 1, 9 do big[c][j] = c == j and 100 * c or j end
    end
    M.confusion_png(nn.tensor(big), names, path, {normalize = true})
    local img2 = nn.image.load(path)
    assert.is_true(img2:size(2) > img:size(2))
    os.remove(path)
  end)

  it("rejects bad input", function()
    assert_error(function() M.confusion_png(nn.zeros(2, 3), {"a", "b"}, "x.png") end, "must be square")
    assert_error(function() M.confusion_png(nn.zeros(2, 2), {"a"}, "x.png") end, "expected 2 class names, got 1")
    assert_error(function() M.confusion_png(nn.zeros(2, 2), {"a", "b"}, "x.png", {colour = 1}) end,
      "unknown option 'colour'")
    assert_error(function() M.confusion_png(nn.zeros(2, 2), {"a", "b"}, "/nonexistent/x.png") end,
      "confusion_png: save: /nonexistent/x.png: cannot create")
  end)
end)
