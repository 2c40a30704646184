/*
 * nnlua.c - the nnlua interpreter: a stand-alone Lua 5.4 with `nn` ready to
 * require.
 *
 *   nnlua [options] [script [args]]
 *
 * It behaves like Lua's own `lua` program (reference manual, section 7):
 * the same options, the same `arg` table, LUA_INIT_5_4 / LUA_INIT, a REPL
 * when stdin is a terminal, every chunk run under lua_pcall with a
 * traceback, "interrupted!" on Ctrl-C, exit status 1 on any error.  On top of
 * that it accepts -h/--help and --version.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "../include/nnlua.h"

/* Flags collected from the command line. */
enum {
  HAS_ERROR = 1,   /* bad option: argv[script] names it */
  HAS_I = 2,       /* -i */
  HAS_V = 4,       /* -v, --version (and -i) */
  HAS_E = 8,       /* -e (some code given on the command line) */
  HAS_NOENV = 16,  /* -E */
  HAS_HELP = 32    /* -h, --help */
};

/* Prefix of error messages; NULL inside the REPL, where lua prints none. */
static const char *progname = "nnlua";

/* The state a SIGINT should interrupt; only the signal handler reads it. */
static lua_State *globalL = NULL;

/* Writes the usage text to `out`; when `badoption` is given, first says what
 * is wrong with it. */
static void print_usage(FILE *out, const char *badoption)
{
  if (badoption != NULL) {
    if (badoption[1] == 'e' || badoption[1] == 'l')
      fprintf(out, "nnlua: '%s' needs argument\n", badoption);
    else
      fprintf(out, "nnlua: unrecognized option '%s'\n", badoption);
  }
  fputs("usage: nnlua [options] [script [args]]\n"
        "Available options are:\n"
        "  -e stat       execute string 'stat'\n"
        "  -i            enter interactive mode after executing 'script'\n"
        "  -l mod        require library 'mod' into global 'mod'\n"
        "  -l g=mod      require library 'mod' into global 'g'\n"
        "  -v, --version show version information\n"
        "  -h, --help    show this help and exit\n"
        "  -E            ignore environment variables\n"
        "  -W            turn warnings on\n"
        "  --            stop handling options\n"
        "  -             stop handling options and execute stdin\n"
        "Environment variables (ignored with -E):\n"
        "  LUA_INIT_5_4, LUA_INIT   code run before any argument\n"
        "                           ('@file' runs that file instead)\n"
        "  LUA_PATH_5_4, LUA_PATH   search path for Lua modules\n"
        "  LUA_CPATH_5_4, LUA_CPATH search path for C modules\n"
        "The 'nn' module is built in: require \"nn\" needs no setup.\n",
        out);
  fflush(out);
}

/* Prints the version line on stdout. */
static void print_version(void)
{
  printf("nnlua %s (%s)\n", NNLUA_VERSION, LUA_RELEASE);
  fflush(stdout);
}

/* Prints "pname: msg" (or just msg when pname is NULL) on stderr. */
static void print_message(const char *pname, const char *msg)
{
  if (pname != NULL)
    fprintf(stderr, "%s: ", pname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* After a failed call (status != LUA_OK), prints the error message on top of
 * the stack and pops it.  Returns status unchanged. */
static int report(lua_State *L, int status)
{
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL)
      msg = "(error object is not a string)";
    print_message(progname, msg);
    lua_pop(L, 1);
  }
  return status;
}

/* Message handler for lua_pcall: turns the error object into a string
 * (through __tostring if it has one) and appends a traceback. */
static int msghandler(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Hook installed by the SIGINT handler: runs at the next Lua instruction,
 * removes itself and raises the error. */
static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void set_sigint(void (*handler)(int));

/* SIGINT handler: a signal handler may not raise a Lua error, so it only
 * asks Lua to call interrupt_hook as soon as possible.  It restores the
 * default action first, so a second Ctrl-C kills a process stuck in C. */
static void on_sigint(int sig)
{
  (void)sig;
  set_sigint(SIG_DFL);
  lua_sethook(globalL, interrupt_hook,
              LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

/* Installs `handler` as the SIGINT action. */
static void set_sigint(void (*handler)(int))
{
  struct sigaction sa;
  sa.sa_handler = handler;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

/* Calls the function below its narg arguments on the stack, like lua_pcall,
 * with msghandler as message handler and Ctrl-C turned into an error for the
 * duration of the call. */
static int docall(lua_State *L, int narg, int nres)
{
  int base = lua_gettop(L) - narg;
  int status;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  globalL = L;
  set_sigint(on_sigint);
  status = lua_pcall(L, narg, nres, base);
  set_sigint(SIG_DFL);
  lua_remove(L, base);
  return status;
}

/* Runs the chunk just loaded with `status` (or reports the load error). */
static int dochunk(lua_State *L, int status)
{
  if (status == LUA_OK)
    status = docall(L, 0, 0);
  return report(L, status);
}

/* Runs a file (stdin when name is NULL) with no arguments. */
static int dofile(lua_State *L, const char *name)
{
  return dochunk(L, luaL_loadfile(L, name));
}

/* Runs the string s as a chunk named `name`. */
static int dostring(lua_State *L, const char *s, const char *name)
{
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l spec: spec is "mod" or "g=mod"; sets global g (or mod) to
 * require(mod). */
static int dolibrary(lua_State *L, const char *spec)
{
  const char *eq = strchr(spec, '=');
  const char *modname = eq != NULL ? eq + 1 : spec;
  size_t globlen = eq != NULL ? (size_t)(eq - spec) : strlen(spec);
  int status;
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  status = docall(L, 1, 1);
  if (status == LUA_OK) {
    lua_pushglobaltable(L);
    lua_pushlstring(L, spec, globlen);
    lua_rotate(L, -3, -1);    /* globals, name, module */
    lua_settable(L, -3);
    lua_pop(L, 1);
  }
  return report(L, status);
}

/* Sets the global `arg`: argv[script] at index 0, the arguments after it at
 * 1, 2, ... and the interpreter and its options at negative indices.  With
 * no script (script == 0) the interpreter name is at 0. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script)
{
  int i;
  lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0,
                  script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, (lua_Integer)i - script);
  }
  lua_setglobal(L, "arg");
}

/* Pushes arg[1..#arg] for the main script's `...`; returns how many. */
static int push_script_args(lua_State *L)
{
  int i, n, argt;
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  argt = lua_gettop(L);
  n = (int)luaL_len(L, argt);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++)
    lua_rawgeti(L, argt, i);
  lua_remove(L, argt);
  return n;
}

/* Loads and runs the main script argv[0] ("-" means stdin, unless it came
 * after "--") with the script arguments as `...`. */
static int handle_script(lua_State *L, char **argv)
{
  const char *fname = argv[0];
  int status;
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0)
    fname = NULL;
  status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = push_script_args(L);
    status = docall(L, n, LUA_MULTRET);
  }
  return report(L, status);
}

/* Scans the options.  Returns HAS_* flags and sets *script to the index of
 * the script in argv (0 when there is none, or the bad option on
 * HAS_ERROR). */
static int collectargs(char **argv, int *script)
{
  int flags = 0;
  int i;
  *script = 0;
  if (argv[0] == NULL)
    return 0;
  for (i = 1; argv[i] != NULL; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {                  /* the script */
      *script = i;
      return flags;
    }
    switch (a[1]) {
    case '\0':                          /* "-": the script is stdin */
      *script = i;
      return flags;
    case '-':
      if (a[2] == '\0') {               /* "--": the next one is the script */
        *script = argv[i + 1] != NULL ? i + 1 : 0;
        return flags;
      }
      if (strcmp(a, "--help") == 0)
        flags |= HAS_HELP;
      else if (strcmp(a, "--version") == 0)
        flags |= HAS_V;
      else
        goto bad;
      break;
    case 'e':
    case 'l':
      if (a[1] == 'e')
        flags |= HAS_E;
      if (a[2] == '\0') {               /* the argument is the next word */
        if (argv[i + 1] == NULL || argv[i + 1][0] == '-')
          goto bad;
        i++;
      }
      break;
    case 'i':
    case 'v':
    case 'h':
    case 'E':
    case 'W':
      if (a[2] != '\0')
        goto bad;
      if (a[1] == 'i')
        flags |= HAS_I | HAS_V;
      else if (a[1] == 'v')
        flags |= HAS_V;
      else if (a[1] == 'h')
        flags |= HAS_HELP;
      else if (a[1] == 'E')
        flags |= HAS_NOENV;
      break;
    default:
      goto bad;
    }
  }
  return flags;
bad:
  *script = i;
  return HAS_ERROR;
}

/* Runs the -e, -l and -W options among argv[1..n-1], in order.  Returns 0
 * when one of them failed (the error is already reported). */
static int runargs(lua_State *L, char **argv, int n)
{
  int i;
  for (i = 1; i < n; i++) {
    char opt = argv[i][1];
    if (opt == 'e' || opt == 'l') {
      const char *val = argv[i][2] != '\0' ? argv[i] + 2 : argv[++i];
      int status = opt == 'e' ? dostring(L, val, "=(command line)")
                              : dolibrary(L, val);
      if (status != LUA_OK)
        return 0;
    } else if (opt == 'W') {
      lua_warning(L, "@on", 0);
    }
  }
  return 1;
}

/* Runs LUA_INIT_5_4, or else LUA_INIT: "@file" runs that file, anything
 * else is run as code. */
static int handle_luainit(lua_State *L)
{
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL)
    return LUA_OK;
  if (init[0] == '@')
    return dofile(L, init + 1);
  return dostring(L, init, name);
}

/* ---- the REPL ---------------------------------------------------------- */

/* Prints the prompt: global _PROMPT / _PROMPT2 (through tostring) when set,
 * else "> " / ">> ". */
static void print_prompt(lua_State *L, int firstline)
{
  int top = lua_gettop(L);
  if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TNIL)
    fputs(firstline ? "> " : ">> ", stdout);
  else
    fputs(luaL_tolstring(L, -1, NULL), stdout);
  fflush(stdout);
  lua_settop(L, top);
}

/* Reads one line of stdin (any length, without its newline) and pushes it.
 * On the first line of a statement, "=expr" becomes "return expr".  Returns
 * 0 and pushes nothing at end of input. */
static int pushline(lua_State *L, int firstline)
{
  luaL_Buffer b;
  int got = 0;
  const char *s;
  print_prompt(L, firstline);
  luaL_buffinit(L, &b);
  for (;;) {
    char *p = luaL_prepbuffer(&b);
    size_t n;
    if (fgets(p, LUAL_BUFFERSIZE, stdin) == NULL)
      break;
    got = 1;
    n = strlen(p);
    if (n > 0 && p[n - 1] == '\n') {
      luaL_addsize(&b, n - 1);
      break;
    }
    luaL_addsize(&b, n);
  }
  luaL_pushresult(&b);
  if (!got) {
    lua_pop(L, 1);
    return 0;
  }
  s = lua_tostring(L, -1);
  if (firstline && s[0] == '=') {
    lua_pushfstring(L, "return %s", s + 1);
    lua_remove(L, -2);
  }
  return 1;
}

/* Tries to compile the line on top as "return <line>;" so a bare expression
 * prints its value.  On success replaces the line with the function. */
static int try_expression(lua_State *L)
{
  const char *code = lua_pushfstring(L, "return %s;", lua_tostring(L, -1));
  int status = luaL_loadbuffer(L, code, strlen(code), "=stdin");
  if (status == LUA_OK)
    lua_remove(L, -2);       /* drop the "return" text, keep the function */
  else
    lua_pop(L, 2);           /* drop the error and the "return" text */
  return status;
}

/* True when status is a syntax error at <eof>: the statement is not
 * finished yet.  Pops that error message. */
static int incomplete(lua_State *L, int status)
{
  if (status == LUA_ERRSYNTAX) {
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    const char *mark = "<eof>";
    size_t marklen = strlen(mark);
    if (len >= marklen && strcmp(msg + len - marklen, mark) == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* Compiles the statement in the code at stack index 1, reading
 * continuation lines while it is incomplete.  Leaves the code and, above
 * it, the function or the error message. */
static int compile_statement(lua_State *L)
{
  for (;;) {
    size_t len;
    const char *code = lua_tolstring(L, 1, &len);
    int status = luaL_loadbuffer(L, code, len, "=stdin");
    if (!incomplete(L, status) || !pushline(L, 0))
      return status;
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);         /* code .. "\n" .. new line */
  }
}

/* Reads and compiles one statement or expression; leaves the function (or
 * the error message) alone on the stack.  Returns -1 at end of input. */
static int loadline(lua_State *L)
{
  int status;
  lua_settop(L, 0);
  if (!pushline(L, 1))
    return -1;
  status = try_expression(L);
  if (status != LUA_OK)
    status = compile_statement(L);
  lua_remove(L, 1);
  return status;
}

/* Prints every value on the stack with the global print. */
static void print_results(lua_State *L)
{
  int n = lua_gettop(L);
  if (n == 0)
    return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_getglobal(L, "print");
  lua_insert(L, 1);
  if (lua_pcall(L, n, 0, 0) != LUA_OK)
    print_message(progname, lua_pushfstring(L, "error calling 'print' (%s)",
                                            lua_tostring(L, -1)));
}

/* Read-eval-print loop on stdin until end of input.  Errors are reported
 * (without the "nnlua:" prefix) and the loop goes on. */
static void doREPL(lua_State *L)
{
  const char *saved = progname;
  int status;
  progname = NULL;
  while ((status = loadline(L)) != -1) {
    if (status == LUA_OK)
      status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK)
      print_results(L);
    else
      report(L, status);
  }
  lua_settop(L, 0);
  fputs("\n", stdout);
  fflush(stdout);
  progname = saved;
}

/* ---- main -------------------------------------------------------------- */

/* Everything main does, run in protected mode so that even a memory error
 * during setup is reported.  Argument 1 is argc, 2 is argv; returns true
 * on success. */
static int pmain(lua_State *L)
{
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int script;
  int flags = collectargs(argv, &script);
  luaL_checkversion(L);
  if (flags & HAS_ERROR) {
    print_usage(stderr, argv[script]);
    return 0;
  }
  if (flags & HAS_HELP) {
    print_usage(stdout, NULL);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (flags & HAS_V)
    print_version();
  if (flags & HAS_NOENV) {              /* tells the package library too */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  nnlua_openlibs(L);
  create_arg_table(L, argv, argc, script);
  if (!(flags & HAS_NOENV) && handle_luainit(L) != LUA_OK)
    return 0;
  if (!runargs(L, argv, script > 0 ? script : argc))
    return 0;
  if (script > 0 && handle_script(L, argv + script) != LUA_OK)
    return 0;
  if (flags & HAS_I) {
    doREPL(L);
  } else if (script == 0 && !(flags & (HAS_E | HAS_V))) {
    if (isatty(fileno(stdin))) {
      print_version();
      doREPL(L);
    } else if (dofile(L, NULL) != LUA_OK) {
      return 0;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv)
{
  lua_State *L = luaL_newstate();
  int status, ok;
  if (L == NULL) {
    print_message(progname, "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  ok = lua_toboolean(L, -1);
  report(L, status);
  lua_close(L);
  return (ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
