/*
** repl.c -- "repl.core": line editing for the REPL (netsh_repl.so).
**
** libedit's readline-compatible callback interface, driven by the loop: a
** uv_poll_t on fd 0 wakes the REPL task, whose continuation feeds exactly
** one key to rl_callback_read_char() and parks again until the line is
** done, so other tasks keep running while the user types. libedit runs
** only inside that continuation, in the REPL task: the completion hook may
** therefore call the Lua completer (under lua_pcall, never yielding), and
** no Lua runs from a libuv callback.
**
** Terminal state: between rl_callback_handler_install() and the end of a
** line (or abort()/close()) the tty is in libedit's raw mode; an atexit
** hook puts it back, so os.exit() from a line leaves a sane terminal.
** Ctrl-C belongs to the REPL while it is attached (ns_on_sigint): it
** interrupts the foreground line's task, or else the REPL task itself
** (which is then waiting for a key: the line is dropped).
**
** Reverse search (^R) is ours, not libedit's em-inc-search-prev: that one
** reads keys in a blocking loop, which would stop every task while the
** user searches. Ours keeps one key per wake-up like the rest.
*/
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <editline/readline.h>
#include "netsh.h"

#define MAX_MATCHES 200      /* libedit asks "Display all?" above 250 */
#define QUERY_MAX 200

static struct {
  int open;              /* open() done: libedit initialized */
  uv_poll_t *poll;       /* fd 0; freed in its close callback */
  uv_signal_t *winch;    /* SIGWINCH: tell libedit the new size */
  ns_waiter_t w;         /* the REPL task while it waits for a key */
  int installed;         /* handler installed: tty raw, line on screen */
  int got;               /* line_cb ran: `line` (NULL: EOF) is ready */
  char *line;
  lua_State *L;          /* task stack libedit hooks may use, or NULL */
  int complete_ref;      /* registry: the Lua completer */
  char prompt[256];
  char history[PATH_MAX];/* "" when history is not saved */
  int hidden;            /* hide(): the line was wiped for output */
  /* reverse search, while `searching` */
  int searching;
  char query[QUERY_MAX];
  int match;             /* index in the history list, -1 none */
  int failed;            /* the last key found nothing */
  char *saved;           /* the line before ^R */
  int rows;              /* rows our search line spans below the top */
} st = { 0, NULL, NULL, {0}, 0, 0, NULL, NULL, LUA_NOREF, "", "", 0,
         0, "", -1, 0, NULL, 0 };

static sig_atomic_t seen_sigint;  /* ns_sigint_count when last looked */

/* Ctrl-C ownership (attach/detach) */
static ns_task_t *repl_task;
static int repl_ref = LUA_NOREF, fg_ref = LUA_NOREF;
static void (*saved_sigint)(void);
static int attached;

/* ---- terminal ---- */

static void term_write(const char *s) {
  fputs(s, rl_outstream ? rl_outstream : stdout);
}

static int screen_cols(void) {
  struct winsize ws;
  if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

/* Display width of s, counting UTF-8 sequences once and skipping the
** invisible parts of ANSI escapes (prompts may be coloured). */
static int text_width(const char *s, size_t n) {
  int w = 0;
  size_t i;
  for (i = 0; i < n && s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == 27) {                       /* ESC [ ... final byte */
      i++;
      if (i < n && s[i] == '[')
        while (i + 1 < n && s[i + 1] && !(s[i + 1] >= '@' &&
               s[i + 1] <= '~'))
          i++;
      i++;
      continue;
    }
    if ((c & 0xC0) != 0x80) w++;
  }
  return w;
}

/* Moves the cursor to the first column of the edit area's first row and
** clears to the end of the screen, given how many rows it is below. */
static void wipe_rows(int rows_above) {
  char buf[32];
  term_write("\r");
  if (rows_above > 0) {
    snprintf(buf, sizeof buf, "\033[%dA", rows_above);
    term_write(buf);
  }
  term_write("\033[J");
}

/* Rows between libedit's cursor and the top of its edit area. */
static int edit_rows_above(void) {
  int cols = screen_cols();
  int w = text_width(st.prompt, sizeof st.prompt) +
          text_width(rl_line_buffer ? rl_line_buffer : "",
                     rl_line_buffer ? (size_t)rl_point : 0);
  return w / cols;
}

/* libedit forgets what it drew and redraws prompt and line from the
** cursor, which must be at the start of a clean area (wipe_rows). */
static void redraw(void) {
  rl_forced_update_display();
  fflush(rl_outstream);
}

/* Leaves libedit's raw mode; the current line stays on screen. */
static void uninstall(void) {
  if (!st.installed) return;
  rl_callback_handler_remove();
  st.installed = 0;
}

static void restore_at_exit(void) {
  if (st.installed) {
    uninstall();
    term_write("\n");
    fflush(rl_outstream);
  }
}

/* ---- reading a line ---- */

static void line_cb(char *line) {
  st.got = 1;
  st.line = line;            /* malloc'd by libedit; NULL at EOF */
  uninstall();               /* cooked mode while the line runs */
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  (void)events;
  uv_poll_stop(h);
  ns_wake(&st.w, status < 0 ? status : 0);
}

static void cancel_cb(ns_waiter_t *w) {
  (void)w;
  if (st.poll) uv_poll_stop(st.poll);
}

static void search_key(int c);
static void search_stop(int keep);

static int readline_k(lua_State *L, int status, lua_KContext ctx);

static int wait_key(lua_State *L) {
  int rc;
  st.w.cancel = cancel_cb;
  rc = uv_poll_start(st.poll, UV_READABLE, poll_cb);
  if (rc < 0) {
    uninstall();
    return ns_fail(L, rc);
  }
  return ns_wait(L, &st.w, -1, readline_k, 0);
}

/* After poll said readable: 1 a key is there, 0 hang-up (the terminal is
** gone: EOF), -1 nothing after all (wait again; libedit would block). */
static int key_ready(void) {
  int avail = 0;
  struct pollfd p;
  if (ioctl(0, FIONREAD, &avail) == 0 && avail > 0) return 1;
  p.fd = 0;
  p.events = POLLIN;
  p.revents = 0;
  if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)))
    return 0;
  return -1;
}

/* Feeds the keys that have arrived to libedit (or to the search), until
** a line is complete or none is left, then returns the line or parks
** again. All of them, not one per wake-up: a busy loop must not make
** typing (or a paste) crawl. */
static int readline_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  if (st.w.status < 0) {
    uninstall();
    return ns_fail(L, st.w.status);
  }
  while (!st.got) {
    int ready;
    if (ns_sigint_count != seen_sigint) {
      /* A Ctrl-C is on its way (the loop turns it into an interrupt of
      ** this task on its next turn): the keys typed after it belong to
      ** the next line, so leave them unread until then. */
      seen_sigint = ns_sigint_count;
      break;
    }
    ready = key_ready();
    if (ready < 0) break;
    if (ready == 0) {                   /* hang-up: like Ctrl-D */
      if (st.searching) search_stop(1);
      uninstall();
      lua_pushnil(L);
      return 1;
    }
    st.L = L;
    if (st.searching) {
      unsigned char c;
      ssize_t n;
      do n = read(0, &c, 1); while (n < 0 && errno == EINTR);
      if (n == 1) search_key(c);
      else search_stop(1);
    } else {
      rl_callback_read_char();
    }
    st.L = NULL;
  }
  fflush(rl_outstream);
  if (st.got) {
    char *line = st.line;
    st.got = 0;
    st.line = NULL;
    if (line == NULL) {
      lua_pushnil(L);
      return 1;
    }
    lua_pushstring(L, line);
    free(line);
    return 1;
  }
  return wait_key(L);
}

/* readline(prompt) -> line | nil at EOF (Ctrl-D on an empty line)
** | nil, err. Raises "interrupted" on Ctrl-C (call abort() then). */
static int lib_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  if (!st.open) return luaL_error(L, "repl.core: open() first");
  if (st.w.task) return ns_fail(L, NS_EBUSY);
  if (!st.installed) {
    snprintf(st.prompt, sizeof st.prompt, "%s", prompt);
    fflush(stdout);
    rl_callback_handler_install(st.prompt, line_cb);
    st.installed = 1;
    st.hidden = 0;
    fflush(rl_outstream);
  }
  return wait_key(L);
}

/* abort(): after an interrupted readline, drop the line being edited. */
static int lib_abort(lua_State *L) {
  (void)L;
  if (st.searching) search_stop(0);       /* the line before the search */
  if (st.installed) {
    uninstall();
    term_write("^C\n");
    fflush(rl_outstream);
  }
  return 0;
}

/* hide() -> wiped; show(): wipe the line being edited before output
** from other tasks, and draw it again after, so they do not print into
** it. No-ops unless the REPL task is parked waiting for a key. */
static int hide(void) {
  int wipe = st.installed && !st.hidden && !st.searching && st.w.task;
  if (wipe) {
    wipe_rows(edit_rows_above());
    fflush(rl_outstream);
    st.hidden = 1;
  }
  return wipe;
}

static void show(void) {
  if (!st.installed || !st.hidden) return;
  st.hidden = 0;
  redraw();
}

/* ns_on_output: the loop's reports of failed tasks go above the line */
static void on_output(int after) {
  if (after) show();
  else hide();
}

static int lib_hide(lua_State *L) {
  lua_pushboolean(L, hide());
  return 1;
}

static int lib_show(lua_State *L) {
  (void)L;
  show();
  return 0;
}

/* ---- reverse incremental search (^R) ---- */

static void search_draw(void) {
  HIST_ENTRY **list = history_list();
  const char *m = (list && st.match >= 0) ? list[st.match]->line : "";
  char head[QUERY_MAX + 40];
  int cols = screen_cols(), w;
  wipe_rows(st.rows);
  snprintf(head, sizeof head, "(%sreverse-i-search)`%s': ",
           st.failed ? "failing " : "", st.query);
  term_write(head);
  term_write(m);
  w = text_width(head, sizeof head) + text_width(m, strlen(m));
  st.rows = w > 0 ? (w - 1) / cols : 0;
  fflush(rl_outstream);
}

/* Newest entry at or before `from` containing the query, or -1. */
static int search_from(int from) {
  HIST_ENTRY **list = history_list();
  int i;
  if (list == NULL) return -1;
  for (i = from; i >= 0; i--)
    if (list[i] && strstr(list[i]->line, st.query)) return i;
  return -1;
}

static int history_count(void) {
  HIST_ENTRY **list = history_list();
  int n = 0;
  if (list) while (list[n]) n++;
  return n;
}

static int search_start(int count, int key) {
  (void)count; (void)key;
  if (st.searching) return 0;
  free(st.saved);
  st.saved = strdup(rl_line_buffer ? rl_line_buffer : "");
  st.searching = 1;
  st.query[0] = '\0';
  st.match = -1;
  st.failed = 0;
  st.rows = edit_rows_above();
  search_draw();
  return 0;
}

/* Ends the search: keep the match in the line (or the saved line). */
static void search_stop(int keep) {
  HIST_ENTRY **list = history_list();
  const char *text = st.saved ? st.saved : "";
  if (!st.searching) return;
  if (keep && list && st.match >= 0) text = list[st.match]->line;
  st.searching = 0;
  wipe_rows(st.rows);
  st.rows = 0;
  rl_delete_text(0, rl_end);
  rl_point = rl_end = 0;
  if (*text) rl_replace_line(text, 0);
  rl_point = rl_end;                      /* the cursor after the text */
  redraw();
  free(st.saved);
  st.saved = NULL;
}

static void drain_escape(void) {
  /* the rest of an arrow key's sequence: consume what already arrived */
  int avail = 0;
  char buf[16];
  if (ioctl(0, FIONREAD, &avail) == 0 && avail > 0)
    while (avail > 0) {
      ssize_t n = read(0, buf, avail < 16 ? (size_t)avail : 16);
      if (n <= 0) break;
      avail -= (int)n;
    }
}

static void search_key(int c) {
  size_t n = strlen(st.query);
  int last = history_count() - 1;
  if (c == 18) {                          /* ^R: the next older match */
    int i = search_from((st.match >= 0 ? st.match : last + 1) - 1);
    if (i >= 0) st.match = i;
    st.failed = i < 0;
  } else if (c == 7) {                    /* ^G: give up */
    search_stop(0);
    return;
  } else if (c == 127 || c == 8) {        /* backspace: shorter query */
    while (n > 0 && ((unsigned char)st.query[n - 1] & 0xC0) == 0x80) n--;
    if (n > 0) n--;
    st.query[n] = '\0';
    st.match = n ? search_from(last) : -1;
    st.failed = n && st.match < 0;
  } else if (c == '\r' || c == '\n') {    /* accept and run */
    HIST_ENTRY **list = history_list();
    char *line = strdup((list && st.match >= 0) ? list[st.match]->line
                        : (st.saved ? st.saved : ""));
    search_stop(1);
    term_write("\n");
    line_cb(line);
    return;
  } else if (c >= 32) {                   /* text (UTF-8 bytes too) */
    if (n + 1 < sizeof st.query) {
      int i;
      st.query[n] = (char)c;
      st.query[n + 1] = '\0';
      i = search_from(st.match >= 0 ? st.match : last);
      if (i >= 0) st.match = i;
      st.failed = i < 0;
    }
  } else {                                /* other keys end the search */
    if (c == 27) drain_escape();
    search_stop(1);
    return;
  }
  search_draw();
}

/* ---- completion ---- */

typedef struct {
  const char *text;
  int start, end;
  char **matches;
} comp_t;

static int lcp(const char *a, const char *b) {
  int i = 0;
  while (a[i] && a[i] == b[i]) i++;
  return i;
}

/* In a protected call: completer(line, start, end) -> {words}, append.
** Builds libedit's array: [0] the common prefix, [1..n] the words. */
static int complete_protected(lua_State *L) {
  comp_t *c = lua_touserdata(L, 1);
  int i, n, k = 0, common = -1;
  char **m;
  lua_rawgeti(L, LUA_REGISTRYINDEX, st.complete_ref);
  lua_pushstring(L, rl_line_buffer ? rl_line_buffer : "");
  lua_pushinteger(L, c->start);
  lua_pushinteger(L, c->end);
  lua_call(L, 3, 2);
  if (!lua_istable(L, -2)) return 0;
  n = (int)lua_rawlen(L, -2);
  if (n > MAX_MATCHES) n = MAX_MATCHES;
  if (n == 0) return 0;
  m = calloc((size_t)n + 2, sizeof *m);
  if (m == NULL) return 0;
  for (i = 1; i <= n; i++) {
    const char *s;
    lua_rawgeti(L, -2, i);
    s = lua_tostring(L, -1);
    if (s && (m[k + 1] = strdup(s)) != NULL) {
      int p = (int)strlen(s);
      if (k > 0) p = lcp(m[1], s);
      if (common < 0 || p < common) common = p;
      k++;
    }
    lua_pop(L, 1);
  }
  if (k == 0 || (m[0] = strndup(m[1], (size_t)common)) == NULL) {
    for (i = 1; i <= k; i++) free(m[i]);
    free(m);
    return 0;
  }
  if (k == 1) {                  /* single match: [0] alone */
    free(m[1]);
    m[1] = NULL;
  }
  {
    const char *app = lua_tostring(L, -1);
    rl_completion_append_character = app && *app ? app[0] : '\0';
  }
  c->matches = m;
  return 0;
}

static char **complete_cb(const char *text, int start, int end) {
  comp_t c;
  lua_State *L = st.L;
  rl_attempted_completion_over = 1;      /* never complete file names */
  rl_completion_append_character = '\0';
  if (L == NULL || st.complete_ref == LUA_NOREF ||
      !lua_checkstack(L, 8))
    return NULL;
  c.text = text;
  c.start = start;
  c.end = end;
  c.matches = NULL;
  /* a light C function and a light userdata: pushing them cannot fail */
  lua_pushcfunction(L, complete_protected);
  lua_pushlightuserdata(L, &c);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
  return c.matches;
}

/* ---- open / history ---- */

static void winch_cb(uv_signal_t *h, int sig) {
  (void)h; (void)sig;
  if (st.open) rl_resize_terminal();
}

static void free_handle_cb(uv_handle_t *h) { free(h); }

/* open{history = path|false, size = n, complete = fn} -> true | nil, err */
static int lib_open(lua_State *L) {
  const char *hist = NULL;
  int size = 1000, rc;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (st.open) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_getfield(L, 1, "history");
  hist = lua_tostring(L, -1);
  if (hist && ns_checkcstring(L, -1, NULL) == NULL)
    return luaL_argerror(L, 1, "'history' must not contain a NUL byte");
  lua_getfield(L, 1, "size");
  size = (int)luaL_optinteger(L, -1, 1000);
  lua_getfield(L, 1, "complete");
  if (lua_isfunction(L, -1)) {
    lua_pushvalue(L, -1);
    st.complete_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pop(L, 3);
  st.poll = malloc(sizeof *st.poll);
  if (st.poll == NULL) return ns_fail(L, UV_ENOMEM);
  rc = uv_poll_init(ns_loop(), st.poll, 0);
  if (rc < 0) {
    free(st.poll);
    st.poll = NULL;
    return ns_fail(L, rc);
  }
  st.winch = malloc(sizeof *st.winch);
  if (st.winch) {
    uv_signal_init(ns_loop(), st.winch);
    uv_signal_start(st.winch, winch_cb, SIGWINCH);
    uv_unref((uv_handle_t *)st.winch);
  }
  rl_readline_name = "netsh";
  rl_catch_signals = 0;        /* SIGINT is the loop's (src/loop.c) */
  rl_instream = stdin;
  rl_outstream = stdout;
  rl_initialize();
  rl_attempted_completion_function = complete_cb;
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#.:";
  rl_completer_word_break_characters =
    (char *)rl_basic_word_break_characters;
  rl_completion_query_items = MAX_MATCHES + 50;
  rl_add_defun("netsh-search", search_start, 18);   /* ^R */
  stifle_history(size > 0 ? size : 1);
  if (hist && *hist) {
    snprintf(st.history, sizeof st.history, "%s", hist);
    read_history(st.history);  /* a missing file is a fresh start */
  }
  atexit(restore_at_exit);
  ns_on_output = on_output;
  st.open = 1;
  lua_pushboolean(L, 1);
  return 1;
}

/* add_history(line) -> true | nil, err: remember, and save the file now
** (the list is capped, so the file is too), so os.exit loses nothing. */
static int lib_add_history(lua_State *L) {
  const char *line = luaL_checkstring(L, 1);
  int rc;
  if (!st.open) return 0;
  add_history(line);
  if (st.history[0] == '\0') {
    lua_pushboolean(L, 1);
    return 1;
  }
  rc = write_history(st.history);
  if (rc != 0) return ns_fail(L, -rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* history() -> {oldest, ..., newest} */
static int lib_history(lua_State *L) {
  HIST_ENTRY **list = st.open ? history_list() : NULL;
  int i;
  lua_newtable(L);
  for (i = 0; list && list[i]; i++) {
    lua_pushstring(L, list[i]->line);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static void close_editor(void) {
  if (!st.open) return;
  if (ns_on_output == on_output) ns_on_output = NULL;
  if (st.searching) search_stop(1);
  uninstall();
  if (st.poll) {
    uv_close((uv_handle_t *)st.poll, free_handle_cb);
    st.poll = NULL;
  }
  if (st.winch) {
    uv_close((uv_handle_t *)st.winch, free_handle_cb);
    st.winch = NULL;
  }
  free(st.saved);
  st.saved = NULL;
  st.open = 0;
}

/* close(): leave raw mode and stop watching fd 0. */
static int lib_close(lua_State *L) {
  close_editor();
  if (st.complete_ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, st.complete_ref);
    st.complete_ref = LUA_NOREF;
  }
  return 0;
}

/* ---- Ctrl-C ownership ---- */

static void repl_sigint(void) {
  ns_task_t *t = ns_foreground;
  if (t && t != repl_task && !ns_task_done(t)) {
    ns_interrupt(t, "interrupted");      /* the running line only */
    return;
  }
  if (repl_task && !ns_task_done(repl_task))
    ns_interrupt(repl_task, "interrupted");
}

static void set_ref(lua_State *L, int *ref, int idx) {
  if (*ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  *ref = LUA_NOREF;
  if (idx) {
    lua_pushvalue(L, idx);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
}

/* attach(handle): the calling task (its handle) is the REPL; Ctrl-C is
** ours from now on. */
static int lib_attach(lua_State *L) {
  ns_task_t *t = ns_task_from_handle(L, 1);
  luaL_argcheck(L, t != NULL && t == ns_current(), 1,
                "the current task expected");
  if (attached) return 0;
  set_ref(L, &repl_ref, 1);
  repl_task = t;
  saved_sigint = ns_on_sigint;
  ns_on_sigint = repl_sigint;
  ns_foreground = t;
  attached = 1;
  return 0;
}

/* detach(): give Ctrl-C back (main.c's handler; the REPL task is the
** foreground one again). */
static int lib_detach(lua_State *L) {
  if (!attached) return 0;
  ns_on_sigint = saved_sigint;
  ns_foreground = repl_task;
  set_ref(L, &fg_ref, 0);
  set_ref(L, &repl_ref, 0);
  repl_task = NULL;
  attached = 0;
  return 0;
}

/* foreground(task | nil): what Ctrl-C interrupts while a line runs. The
** handle is anchored so ns_foreground never dangles. */
static int lib_foreground(lua_State *L) {
  if (!attached) return 0;
  if (lua_isnoneornil(L, 1)) {
    set_ref(L, &fg_ref, 0);
    ns_foreground = repl_task;
    return 0;
  }
  {
    ns_task_t *t = ns_task_from_handle(L, 1);
    luaL_argcheck(L, t != NULL, 1, "task expected");
    set_ref(L, &fg_ref, 1);
    ns_foreground = t;
  }
  return 0;
}

/* ---- misc ---- */

static int lib_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

static int lib_versions(lua_State *L) {
  lua_createtable(L, 0, 4);
  lua_pushliteral(L, NETSH_VERSION);
  lua_setfield(L, -2, "netsh");
  lua_pushliteral(L, LUA_RELEASE);
  lua_setfield(L, -2, "lua");
  lua_pushstring(L, uv_version_string());
  lua_setfield(L, -2, "libuv");
  return 1;
}

/* At lua_close: handles go back to libuv, whose loop finishes closing. */
static int meta_gc(lua_State *L) {
  lib_detach(L);
  close_editor();
  return 0;
}

static const luaL_Reg lib[] = {
  {"open", lib_open},
  {"close", lib_close},
  {"readline", lib_readline},
  {"abort", lib_abort},
  {"hide", lib_hide},
  {"show", lib_show},
  {"add_history", lib_add_history},
  {"history", lib_history},
  {"attach", lib_attach},
  {"detach", lib_detach},
  {"foreground", lib_foreground},
  {"isatty", lib_isatty},
  {"versions", lib_versions},
  {NULL, NULL}
};

int luaopen_repl_core(lua_State *L) {
  luaL_newlib(L, lib);
  /* a sentinel whose __gc releases the handles at lua_close */
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "netsh.repl.sentinel");
  return 1;
}
