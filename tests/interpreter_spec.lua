-- The nnlua interpreter behaves like lua 5.4's stand-alone interpreter:
-- arg table, options, LUA_INIT, REPL, errors with tracebacks, exit status.
-- Runs the binary $NNLUA_BUILD/nnlua (default build/nnlua) through the shell.

local NNLUA = (os.getenv("NNLUA_BUILD") or "build") .. "/nnlua"

local base = os.tmpname()          -- temporary files are base .. suffix
local made = { base }

local function tmpfile(suffix, contents)
  local name = base .. suffix
  local f = assert(io.open(name, "wb"))
  f:write(contents)
  f:close()
  made[#made + 1] = name
  return name
end

local function slurp(name)
  local f = io.open(name, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Runs `env` + nnlua with the given argument words (quoted here) and
-- optional stdin text.  Returns stdout, stderr, exit code.
local function run(words, stdin, env, prefix)
  local parts = {}
  for i, w in ipairs(words or {}) do parts[i] = q(w) end
  local out, err = base .. ".out", base .. ".err"
  made[#made + 1] = out
  made[#made + 1] = err
  local input = tmpfile(".in", stdin or "")
  local cmd = string.format("%senv -u LUA_INIT -u LUA_INIT_5_4 %s %s %s <%s >%s 2>%s",
    prefix or "", env or "", q(NNLUA), table.concat(parts, " "), q(input), q(out), q(err))
  local _, how, code = os.execute(cmd)
  if how == "signal" then code = 128 + code end
  return slurp(out), slurp(err), code
end

local function has(s, sub) return s:find(sub, 1, true) ~= nil end

teardown(function()
  for _, name in ipairs(made) do os.remove(name) end
end)

describe("nnlua interpreter", function()
  describe("arg and ...", function()
    it("sets arg like lua: options at negative indices, script at 0", function()
      local script = tmpfile("_args.lua", [[
        local t = {}
        for i = -3, #arg do t[#t + 1] = i .. "=" .. tostring(arg[i]) end
        print(table.concat(t, "|"))
        print(select("#", ...), ...)
      ]])
      local out, err, code = run({ "-e", "x=1", script, "a", "b c" })
      assert.are.equal("", err)
      assert.are.equal(0, code)
      assert.are.equal(
        "-3=" .. NNLUA .. "|-2=-e|-1=x=1|0=" .. script .. "|1=a|2=b c\n" ..
        "2\ta\tb c\n", out)
    end)

    it("puts the interpreter at arg[0] when there is no script", function()
      local out, _, code = run({ "-e", "print(arg[0], arg[1], #arg, arg[-1])" })
      assert.are.equal(0, code)
      assert.are.equal(NNLUA .. "\t-e\t2\tnil\n", out)
    end)

    it("stops option handling at --", function()
      local script = tmpfile("_dash.lua", "print(arg[-1], arg[0], arg[1], ...)")
      local out, _, code = run({ "--", script, "-e", "x" })
      assert.are.equal(0, code)
      assert.are.equal("--\t" .. script .. "\t-e\t-e\tx\n", out)
    end)

    it("passes options after the script to the script", function()
      local script = tmpfile("_opts.lua", "print(...)")
      local out, _, code = run({ script, "-v", "--epochs", "3" })
      assert.are.equal(0, code)
      assert.are.equal("-v\t--epochs\t3\n", out)
    end)
  end)

  describe("options", function()
    it("runs -e chunks in order, before the script", function()
      local script = tmpfile("_e.lua", "print('script', x)")
      local out, _, code = run({ "-e", "x = 1", "-e", "x = x * 10",
                                 "-eprint(x)", script })
      assert.are.equal(0, code)
      assert.are.equal("10\nscript\t10\n", out)
    end)

    it("does not run the script when an -e chunk fails", function()
      local script = tmpfile("_never.lua", "print('ran')")
      local out, err, code = run({ "-e", "error('first')", script })
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.truthy(has(err, "first"))
    end)

    it("prints the version with -v and --version", function()
      for _, opt in ipairs({ "-v", "--version" }) do
        local out, err, code = run({ opt })
        assert.are.equal(0, code)
        assert.are.equal("", err)
        assert.truthy(out:match("^nnlua %d+%.%d+%.%d+ %(Lua 5%.4%.%d+%)\n$"), out)
      end
    end)

    it("prints help listing every option and variable with -h and --help", function()
      for _, opt in ipairs({ "-h", "--help" }) do
        local out, err, code = run({ opt })
        assert.are.equal(0, code)
        assert.are.equal("", err)
        assert.truthy(has(out, "usage: nnlua"))
        for _, word in ipairs({ "-e stat", "-i ", "-l mod", "-l g=mod", "-v",
            "--version", "-h", "--help", "-E ", "-W ", "-- ", "- ",
            "LUA_INIT_5_4", "LUA_INIT", "LUA_PATH", "LUA_CPATH" }) do
          assert.truthy(has(out, word), "help does not mention " .. word)
        end
      end
    end)

    it("rejects an unknown option with usage on stderr and status 1", function()
      local out, err, code = run({ "-x" })
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.truthy(has(err, "unrecognized option '-x'"))
      assert.truthy(has(err, "usage: nnlua"))
      local _, err2, code2 = run({ "--bogus" })
      assert.are.equal(1, code2)
      assert.truthy(has(err2, "unrecognized option '--bogus'"))
    end)

    it("requires an argument after -e and -l", function()
      local _, err, code = run({ "-e" })
      assert.are.equal(1, code)
      assert.truthy(has(err, "'-e' needs argument"))
      _, err, code = run({ "-l" })
      assert.are.equal(1, code)
      assert.truthy(has(err, "'-l' needs argument"))
    end)

    it("requires a module into a global with -l mod and -l g=mod", function()
      local out, _, code = run({ "-l", "string", "-lstr=string",
                                 "-e", "print(string == str, type(str))" })
      assert.are.equal(0, code)
      assert.are.equal("true\ttable\n", out)
    end)

    it("fails with status 1 when -l cannot find the module", function()
      local _, err, code = run({ "-l", "no_such_module_xyz" })
      assert.are.equal(1, code)
      assert.truthy(has(err, "no_such_module_xyz"))
    end)

    it("turns warnings on with -W", function()
      local _, err, code = run({ "-W", "-e", "warn('careful')" })
      assert.are.equal(0, code)
      assert.truthy(has(err, "Lua warning: careful"))
      _, err = run({ "-e", "warn('careful')" })
      assert.are.equal("", err)
    end)
  end)

  describe("LUA_INIT", function()
    it("runs LUA_INIT code, or LUA_INIT_5_4 in preference", function()
      local out = run({ "-e", "print(x)" }, nil, "LUA_INIT='x=5'")
      assert.are.equal("5\n", out)
      out = run({ "-e", "print(x)" }, nil, "LUA_INIT='x=5' LUA_INIT_5_4='x=6'")
      assert.are.equal("6\n", out)
    end)

    it("runs the file named by LUA_INIT=@file", function()
      local init = tmpfile("_init.lua", "y = 'from file'")
      local out = run({ "-e", "print(y)" }, nil, "LUA_INIT=" .. q("@" .. init))
      assert.are.equal("from file\n", out)
    end)

    it("is ignored with -E", function()
      local out = run({ "-E", "-e", "print(x)" }, nil, "LUA_INIT='x=5'")
      assert.are.equal("nil\n", out)
    end)

    it("stops with status 1 when it fails", function()
      local out, err, code = run({ "-e", "print('no')" }, nil, "LUA_INIT='error(42)'")
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.truthy(has(err, "42"))
    end)
  end)

  describe("errors and exit status", function()
    it("reports a runtime error with a traceback and status 1", function()
      local script = tmpfile("_fail.lua", "local function f() error('boom') end\nf()\n")
      local out, err, code = run({ script })
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.truthy(err:match("^nnlua: [^\n]*:1: boom\n"), err)
      assert.truthy(has(err, "stack traceback:"))
      assert.truthy(has(err, "in local 'f'") or has(err, "in function 'f'")
                    or has(err, "in upvalue 'f'"), err)
    end)

    it("reports a syntax error with status 1", function()
      local script = tmpfile("_syntax.lua", "x = = 1\n")
      local out, err, code = run({ script })
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.truthy(err:match("^nnlua: [^\n]*:1: unexpected symbol near '='"), err)
    end)

    it("reports a missing script file with status 1", function()
      local _, err, code = run({ base .. "_missing.lua" })
      assert.are.equal(1, code)
      assert.truthy(has(err, "cannot open"))
    end)

    it("describes non-string error objects", function()
      local _, err, code = run({ "-e", "error({})" })
      assert.are.equal(1, code)
      assert.truthy(has(err, "nnlua: (error object is a table value)"))
      assert.truthy(has(err, "stack traceback:"))
      _, err, code = run({ "-e",
        "error(setmetatable({}, {__tostring = function() return 'custom' end}))" })
      assert.are.equal(1, code)
      assert.truthy(err:match("^nnlua: custom\n"), err)
    end)

    it("exits with the status given to os.exit", function()
      local _, _, code = run({ "-e", "os.exit(3)" })
      assert.are.equal(3, code)
      _, _, code = run({ "-e", "os.exit(true)" })
      assert.are.equal(0, code)
      _, _, code = run({ "-e", "os.exit(false)" })
      assert.are.equal(1, code)
      _, _, code = run({ "-e", "os.exit(0, true)" })
      assert.are.equal(0, code)
    end)

    it("stops a running script on SIGINT with 'interrupted!'", function()
      if not os.execute("command -v timeout >/dev/null 2>&1") then
        pending("no timeout command")
        return
      end
      local out, err, code = run({ "-e", "print('start') io.stdout:flush() while true do end" },
                                 nil, nil, "timeout --foreground --preserve-status -k 5 -s INT 1 ")
      assert.are.equal(1, code)
      assert.are.equal("start\n", out)
      assert.truthy(has(err, "interrupted!"))
      assert.truthy(has(err, "stack traceback:"))
    end)
  end)

  describe("stdin", function()
    it("runs stdin as a script with -", function()
      local out, _, code = run({ "-" }, "print(1+1)\n")
      assert.are.equal(0, code)
      assert.are.equal("2\n", out)
    end)

    it("passes arguments to a script read from stdin", function()
      local out, _, code = run({ "-", "a", "b" }, "print(arg[0], ...)\n")
      assert.are.equal(0, code)
      assert.are.equal("-\ta\tb\n", out)
    end)

    it("runs stdin when it is not a terminal and nothing else is given", function()
      local out, _, code = run({}, "print('piped')\n")
      assert.are.equal(0, code)
      assert.are.equal("piped\n", out)
    end)

    it("reports an error in stdin with status 1", function()
      local _, err, code = run({ "-" }, "error('bad input')\n")
      assert.are.equal(1, code)
      assert.truthy(has(err, "nnlua: stdin:1: bad input"))
      assert.truthy(has(err, "stack traceback:"))
    end)
  end)

  describe("interactive mode", function()
    it("prints the value of an expression", function()
      local out, _, code = run({ "-i" }, "1+2\n")
      assert.are.equal(0, code)
      assert.truthy(has(out, "> 3\n"), out)
    end)

    it("prints several results, reads continuation lines, keeps going after errors", function()
      local out, err, code = run({ "-i" },
        "1, 'two', nil\nfor i = 1, 2 do\nprint(i * 10)\nend\nerror('oops')\nx = 7\nx\n")
      assert.are.equal(0, code)
      assert.truthy(has(out, "> 1\ttwo\tnil\n"), out)
      assert.truthy(has(out, ">> >> 10\n20\n"), out)
      assert.truthy(has(out, "> 7\n"), out)
      assert.truthy(has(err, "stdin:1: oops"), err)
    end)

    it("runs the script first, then reads statements", function()
      local script = tmpfile("_repl.lua", "answer = 42")
      local out, _, code = run({ "-i", script }, "answer\n")
      assert.are.equal(0, code)
      assert.truthy(has(out, "> 42\n"), out)
    end)
  end)

  describe("require 'nn'", function()
    it("works with no environment setup", function()
      local out, err, code = run({ "-e", "local nn = require 'nn'; print(type(nn))" })
      assert.are.equal("", err)
      assert.are.equal(0, code)
      assert.are.equal("table\n", out)
    end)

    it("works through -l nn", function()
      local out, _, code = run({ "-l", "nn", "-e", "print(type(nn), nn == require 'nn')" })
      assert.are.equal(0, code)
      assert.are.equal("table\ttrue\n", out)
    end)
  end)
end)
