/*
** main.c -- the netsh command line: options as lua(1) takes them, then the
** main chunk runs as a task on the loop (lua/netsh/prelude.lua: main()).
**
** The C side only parses argv into a plan (a Lua table of steps: -e, -l,
** script, stdin, repl, test) and decides the exit code:
**   0  success (and no unjoined task failed)   1  error, or a task failed
**   2  usage error                             130 interrupted (SIGINT)
**   n  os.exit(n)
** The process ends when the main task has ended and no other task lives;
** an error in the main task ends it at once.
*/
#define _GNU_SOURCE             /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>
#include <lualib.h>
#include <ares.h>
#include <curl/curlver.h>
#include <openssl/opensslv.h>
#include "netsh.h"

static const char *progname = "netsh";
static int main_done, main_failed;

static void usage(FILE *f) {
  fprintf(f,
    "usage: %s [options] [script [args]]\n"
    "Available options are:\n"
    "  -e stat   execute string 'stat'\n"
    "  -i        enter interactive mode after executing 'script'\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -l g=mod  require library 'mod' into global 'g'\n"
    "  -m name   run the bundled script 'name' with the remaining args\n"
    "            (-m alone lists the bundled scripts)\n"
    "  -q        no banner in interactive mode\n"
    "  -v        show version information\n"
    "  -E        ignore environment variables\n"
    "  -W        turn warnings on\n"
    "  --        stop handling options\n"
    "  -         stop handling options and execute stdin\n"
    "Commands:\n"
    "  %s test [busted options] [paths]   run busted specs inside the loop\n"
    "  %s run name [args]                 same as -m name\n"
    "Environment: NETSH_INIT (like LUA_INIT), NETSH_LUA_DIR, NETSH_HISTORY\n",
    progname, progname, progname);
}

/* A string field of a native module (http.core, tls.core load lazily),
** or the fallback when the module cannot be loaded. */
static const char *module_field(lua_State *L, const char *mod,
                                const char *field, const char *fallback) {
  const char *v = fallback;
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1) &&
      lua_getfield(L, -1, field) == LUA_TSTRING) {
    v = lua_tostring(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, field);   /* keeps it alive */
  } else if (lua_istable(L, -1)) {
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return v;
}

/* The versions of the libraries running, not the headers built against
** (a newer OpenSSL or libcurl may be loaded than the one compiled with). */
static void print_version(lua_State *L) {
  const char *curl = module_field(L, "http.core", "curl", LIBCURL_VERSION);
  const char *ssl = module_field(L, "tls.core", "openssl",
                                 OPENSSL_VERSION_TEXT);
  printf("netsh %s (%s, libuv %s, c-ares %s, libcurl %s, %s)\n",
         NETSH_VERSION, LUA_RELEASE, uv_version_string(),
         ares_version(NULL), curl, ssl);
  fflush(stdout);
}

/* The main task's error on stderr with the user's frames only: those of
** netsh's own prelude (and the tail-call marks before them) go, and so
** does "stack traceback:" when nothing is left (a missing script), as
** lua5.4 shows none of its own. */
static void print_failure(const char *s) {
  const char *tb = strstr(s, "\nstack traceback:\n"), *p, *keep[64];
  size_t klen[64];
  int n = 0, i;
  if (tb == NULL) {
    fprintf(stderr, "%s: %s\n", progname, s);
    return;
  }
  for (p = tb + 18; *p && n < 64; ) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (!memmem(p, len, "lua/netsh/prelude.lua:", 22)) {
      keep[n] = p;
      klen[n++] = len;
    }
    p += len + (nl != NULL);
  }
  while (n > 0 && klen[n - 1] >= 15 &&
         memmem(keep[n - 1], klen[n - 1], "(...tail calls...)", 18)) n--;
  fprintf(stderr, "%s: %.*s\n", progname, (int)(tb - s), s);
  if (n > 0) fputs("stack traceback:\n", stderr);
  for (i = 0; i < n; i++)
    fprintf(stderr, "%.*s\n", (int)klen[i], keep[i]);
}

static void on_main_done(ns_task_t *t, int failed) {
  (void)t;
  main_done = 1;
  main_failed = failed;
  if (failed) {
    lua_State *L = ns_mainstate();
    lua_getfield(L, LUA_REGISTRYINDEX, "netsh.main_traceback");
    fflush(stdout);
    if (ns_sigint_count && lua_isstring(L, -1) &&
        strncmp(lua_tostring(L, -1), "interrupted\n", 12) == 0)
      fprintf(stderr, "%s: interrupted\n", progname);  /* Ctrl-C: no trace */
    else
      print_failure(lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
    fflush(stderr);
    lua_pop(L, 1);
    ns_stop();
  }
}

/* Ctrl-C seen by the loop while the foreground task was parked. */
static void on_sigint(void) {
  if (ns_foreground && !ns_task_done(ns_foreground)) {
    ns_interrupt(ns_foreground, "interrupted");
    return;
  }
  fflush(stdout);
  _exit(130);
}

/* Adds plan[#plan + 1] = {kind = kind, a = a, b = b}. */
static void add_step(lua_State *L, const char *kind, const char *a,
                     const char *b) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (a) {
    lua_pushstring(L, a);
    lua_setfield(L, -2, "a");
  }
  if (b) {
    lua_pushstring(L, b);
    lua_setfield(L, -2, "b");
  }
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

static void set_arg_table(lua_State *L, char **argv, int argc, int script) {
  int i;
  lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0,
                  script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* A closed 0, 1 or 2 (`cmd <&-`, daemons, cron) would be the next fd
** libuv or a socket gets; stdio would then read or write that socket, and
** libuv asserts when it closes an fd <= 2. Park them on /dev/null. */
static void open_std_fds(void) {
  int fd;
  for (fd = 0; fd <= 2; fd++) {
    int nfd;
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (nfd >= 0 && nfd != fd) {   /* open takes the lowest free fd */
      dup2(nfd, fd);
      close(nfd);
    }
  }
}

static int usage_error(const char *fmt, const char *what) {
  fprintf(stderr, "%s: ", progname);
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\n");
  usage(stderr);
  return 2;
}

int main(int argc, char **argv) {
  lua_State *L;
  int i, script = 0, interactive = 0, version = 0, noenv = 0, warn = 0;
  int quiet = 0, mode_test = 0, mode_run = 0, code;
  const char *runname = NULL;

  open_std_fds();
  if (argv[0] && argv[0][0]) {
    const char *s = strrchr(argv[0], '/');
    progname = s ? s + 1 : argv[0];
  }
  /* Pass 1: find the script and the flags that matter before the state. */
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i == 1 && (strcmp(a, "test") == 0 || strcmp(a, "run") == 0) &&
        access(a, F_OK) != 0) {
      if (a[0] == 't') mode_test = 1;
      else {
        if (i + 1 >= argc) { mode_run = 1; script = argc; break; }
        runname = argv[i + 1];
        mode_run = 1;
        i++;
      }
      script = i;
      break;
    }
    if (a[0] != '-') { script = i; break; }
    if (strcmp(a, "-") == 0) { script = i; break; }
    if (strcmp(a, "--") == 0) {
      if (i + 1 < argc) script = i + 1;
      break;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--version") == 0) { version = 1; continue; }
    switch (a[1]) {
      case 'i': if (a[2]) return usage_error("unrecognized option '%s'", a);
                interactive = 1; version = 1; break;
      case 'v': if (a[2]) return usage_error("unrecognized option '%s'", a);
                version = 1; break;
      case 'q': if (a[2]) return usage_error("unrecognized option '%s'", a);
                quiet = 1; break;
      case 'E': if (a[2]) return usage_error("unrecognized option '%s'", a);
                noenv = 1; break;
      case 'W': if (a[2]) return usage_error("unrecognized option '%s'", a);
                warn = 1; break;
      case 'e': case 'l':
        if (a[2] == '\0' && (++i >= argc || argv[i] == NULL))
          return usage_error("'%s' needs argument", a);
        break;
      case 'm':
        mode_run = 1;
        if (a[2]) runname = a + 2;
        else if (i + 1 < argc) runname = argv[++i];
        script = runname ? i : argc;
        break;
      default:
        return usage_error("unrecognized option '%s'", a);
    }
    if (mode_run) break;
  }
  if (script == 0) script = argc;   /* no script */

  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n",
            progname);
    return 1;
  }
  if (noenv) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  if (warn) lua_warning(L, "@on", 0);
  if (ns_loop_init(L) != 0) {
    fprintf(stderr, "%s: cannot start the event loop\n", progname);
    return 1;
  }
  ns_on_main_done = on_main_done;
  ns_on_sigint = on_sigint;
  ns_open_embedded(L);
  set_arg_table(L, argv, argc, script < argc ? script : 0);

  /* The plan, in lua(1)'s order: init, -e/-l as given, script, -i. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "netsh.prelude");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);   /* NETSH_LUA_DIR's may be odd */
    fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(no message)");
    return 1;
  }
  lua_getfield(L, -1, "main");
  lua_newtable(L);                               /* plan */
  if (!noenv) {
    const char *init = getenv("NETSH_INIT_5_4");
    const char *name = "=NETSH_INIT_5_4";
    if (init == NULL) {
      init = getenv("NETSH_INIT");
      name = "=NETSH_INIT";
    }
    if (init) add_step(L, "init", init, name);
  }
  if (version && !interactive) print_version(L);
  for (i = 1; i < script && i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') break;
    if (a[1] == 'e' || a[1] == 'l') {
      const char *v = a[2] ? a + 2 : argv[++i];
      add_step(L, a[1] == 'e' ? "e" : "l", v, NULL);
    }
  }
  if (mode_test) {
    add_step(L, "test", NULL, NULL);
  } else if (mode_run) {
    add_step(L, "run", runname, NULL);
  } else if (script < argc) {
    add_step(L, "script", argv[script], NULL);
  }
  if (interactive) {
    add_step(L, "repl", quiet ? NULL : "banner", NULL);
  } else if (script >= argc && !mode_test && !mode_run) {
    /* nothing to run: lua(1) runs stdin, or the REPL on a terminal,
    ** unless -e/-v already did something */
    int did = 0;
    for (i = 1; i < argc; i++)
      if (argv[i][0] == '-' && (argv[i][1] == 'e' || argv[i][1] == 'v' ||
                                strcmp(argv[i], "--version") == 0))
        did = 1;
    if (!did) {
      if (isatty(0)) add_step(L, "repl", quiet ? NULL : "banner", NULL);
      else add_step(L, "stdin", NULL, NULL);
    }
  }
  {
    ns_task_t *t;
    lua_remove(L, -3);                           /* prelude module */
    t = ns_spawn(L, 1, "main");
    ns_task_mark_main(t);
    ns_foreground = t;
    lua_pop(L, 1);
  }
  {
    int stuck = ns_run();
    if (!main_done && stuck) {
      fprintf(stderr, "%s: deadlock: %d task(s) wait for something that "
              "can never happen\n", progname, stuck);
      code = 1;
    } else if (main_failed) {
      code = ns_sigint_count ? 130 : 1;
    } else {
      ns_report_orphans();
      code = ns_exit_status();
    }
  }
  fflush(stdout);
  ns_foreground = NULL;
  lua_close(L);
  ns_loop_close();
  return code;
}
