/*
** loop.c -- the one uv_loop_t and the task scheduler ("task.core").
**
** A task is a coroutine plus an ns_task_t (the Lua-visible handle, a full
** userdata whose user value 1 is the coroutine). While a task is alive the
** registry anchors its handle, so neither is collected; once it has ended,
** only user references keep the handle (and its results) alive.
**
** Tasks are resumed only from run_ready(), called by a uv_check handle after
** each round of I/O callbacks. Callbacks never resume: ns_wake() queues the
** task and starts a (no-op) uv_idle handle so the loop does not block while
** the ready queue is non-empty. A task parked on a waiter has t->waiting set;
** the resume lands in wait_k(), which checks that this waiter really fired
** and raises pending deadline/interrupt errors before the binding's own
** continuation runs.
**
** Waits inside a coroutine created by the script (coroutine.wrap iterators)
** work because lua/netsh/prelude.lua wraps coroutine.resume: ns_wait yields
** the SUSPEND sentinel, which the wrapper passes up to the task.
*/
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "netsh.h"

#define TASK_MT "netsh.task"
#define COND_MT "netsh.cond"
#define DEADLINE_MT "netsh.deadline"

enum { T_READY, T_RUNNING, T_WAITING, T_DONE, T_FAILED, T_CANCELLED };
static const char *const state_names[] = {
  "ready", "running", "waiting", "done", "failed", "cancelled"
};

enum { PEND_NONE, PEND_DEADLINE, PEND_INTERRUPT };

struct ns_task {
  lua_State *co;
  int ref;                 /* registry anchor while alive, else LUA_NOREF */
  int state;
  ns_waiter_t *waiting;    /* parked on; NULL when not parked */
  ns_waiter_t *kw;         /* waiter of the wait wait_k will finish */
  lua_KFunction k;         /* binding continuation */
  lua_KContext kctx;
  uv_timer_t *timer;       /* lazily made; owned by libuv after uv_close */
  int timer_is_deadline;   /* the armed timer is the scope deadline */
  uint64_t due;            /* loop ms the current wait times out, 0: no */
  uint64_t armed;          /* loop ms the timer fires (when active) */
  double deadline;         /* absolute ns_now() seconds, HUGE_VAL: none */
  int deadline_id;
  int pending;             /* PEND_*: raise at the next resume point */
  int pending_ref;         /* registry ref of the interrupt error value */
  int cancel_req;          /* cancel at the next scheduling point */
  int unwinding;           /* T_CANCELLED/T_FAILED while its <close>
                           ** handlers run after the stack is gone */
  int nargs;               /* values to pass to the next lua_resume */
  int nres;                /* results on co's stack once done */
  int quiet;               /* failures handled elsewhere (group, main) */
  int retrieved;           /* a join saw the outcome */
  char *report;            /* failure text kept until joined or reported */
  int is_main;
  ns_link_t ready;         /* in ready_q while T_READY */
  ns_link_t live;          /* in live_list (for tasks()), or orphans */
  ns_cond_t done;          /* joiners */
  ns_waiter_t selfw;       /* for sleep, join, cond waits */
  char name[96];
};

static uv_loop_t *loop;
static lua_State *L0;            /* main thread */
static ns_task_t *current;       /* the running task, or NULL */
static ns_link_t ready_q = {&ready_q, &ready_q};  /* FIFO */
static ns_link_t live_list = {&live_list, &live_list};  /* live tasks */
static uv_check_t check_h;
static uv_idle_t idle_h;
static int live_count;
static int deadline_seq;
static int closing;
static int exit_status;          /* 1 once an unjoined task failed */
/* failed, not yet joined (or reported) */
static ns_link_t orphans = {&orphans, &orphans};
static uv_timer_t gc_timer;      /* a collection soon after a failure */
static int suspend_key;          /* its address is the SUSPEND sentinel */

/* main.c learns about the main task's end through this. */
void (*ns_on_main_done)(ns_task_t *t, int failed);

uv_loop_t *ns_loop(void) { return loop; }
lua_State *ns_mainstate(void) { return L0; }
ns_task_t *ns_current(void) { return current; }
int ns_task_done(ns_task_t *t) { return t->state >= T_DONE; }
int ns_exit_status(void) { return exit_status; }

double ns_now(void) { return (double)uv_hrtime() / 1e9; }

static unsigned turn;            /* runs of run_ready() */
unsigned ns_turn(void) { return turn; }

/* ---- ready queue ---- */

static void idle_cb(uv_idle_t *h) { (void)h; }

static void enqueue(ns_task_t *t) {
  t->state = T_READY;
  ns_list_insert_tail(&ready_q, &t->ready);
  if (!uv_is_active((uv_handle_t *)&idle_h))
    uv_idle_start(&idle_h, idle_cb);  /* poll must not block now */
}

/* A wake leaves the timer running, unreferenced (it keeps no loop
** alive): the next wait of the task, usually with the same timeout, only
** moves t->due, and timer_cb re-arms a timer that fires early. That
** spares two timer-heap updates per wait (uv_timer_stop 2.7% and
** uv_timer_start 2% of a 5000-connection echo server's CPU). */
static void timer_stop(ns_task_t *t) {
  t->due = 0;
  if (t->timer && uv_is_active((uv_handle_t *)t->timer))
    uv_unref((uv_handle_t *)t->timer);
}

void ns_wake(ns_waiter_t *w, int status) {
  ns_task_t *t = w->task;
  if (t == NULL || closing) return;
  w->status = status;
  w->task = NULL;
  t->waiting = NULL;
  timer_stop(t);
  enqueue(t);
}

void ns_cancel(ns_waiter_t *w, int status) {
  if (w->task == NULL) return;
  w->status = status;
  if (w->cancel) w->cancel(w);
  ns_wake(w, status);
}

/* ---- conditions ---- */

void ns_cond_init(ns_cond_t *c) { ns_list_init(&c->waiters); }

void ns_cond_remove(ns_waiter_t *w) { ns_list_remove(&w->link); }

int ns_cond_wait(lua_State *L, ns_cond_t *c, ns_waiter_t *w, double timeout,
                 lua_KFunction k, lua_KContext ctx) {
  w->cancel = ns_cond_remove;
  ns_list_insert_tail(&c->waiters, &w->link);
  return ns_wait(L, w, timeout, k, ctx);
}

ns_waiter_t *ns_cond_signal(ns_cond_t *c, int status) {
  ns_waiter_t *w = ns_cond_first(c);
  if (w == NULL) return NULL;
  ns_cond_remove(w);
  ns_wake(w, status);
  return w;
}

void ns_cond_broadcast(ns_cond_t *c, int status) {
  while (ns_cond_signal(c, status) != NULL) {}
}

/* ---- waiting ---- */

static void timer_cb(uv_timer_t *h) {
  ns_task_t *t = h->data;
  ns_waiter_t *w;
  if (t == NULL || (w = t->waiting) == NULL || t->due == 0) return;
  if (uv_now(loop) < t->due) {         /* armed by an earlier wait */
    t->armed = t->due;
    uv_timer_start(h, timer_cb, t->due - uv_now(loop), 0);
    return;
  }
  t->due = 0;
  if (t->timer_is_deadline) {
    t->pending = PEND_DEADLINE;
    ns_cancel(w, NS_EDEADLINE);
  } else {
    ns_cancel(w, UV_ETIMEDOUT);
  }
}

static void free_handle_cb(uv_handle_t *h) { free(h); }

static void push_deadline_error(lua_State *L, int id) {
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, id);
  lua_setfield(L, -2, "deadline");
  luaL_setmetatable(L, DEADLINE_MT);
}

/* Raise what is pending for t in L (the coroutine that waits). */
static int raise_pending(lua_State *L, ns_task_t *t) {
  int p = t->pending;
  t->pending = PEND_NONE;
  if (p == PEND_DEADLINE) {
    push_deadline_error(L, t->deadline_id);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->pending_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, t->pending_ref);
    t->pending_ref = LUA_NOREF;
  }
  return lua_error(L);
}

/* The <close> handlers of a task that is cancelled or has failed run
** when its stack is gone (lua_closethread): nothing there can yield.
** Say so instead of "cannot yield", so the handler's author knows why. */
static int unwinding_error(lua_State *L, ns_task_t *t) {
  return luaL_error(L, "attempt to wait in a <close> handler of a %s task"
                    " (spawn a task for cleanup that waits)",
                    t->unwinding == T_CANCELLED ? "cancelled" : "failed");
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  ns_task_t *t = (ns_task_t *)ctx;
  ns_waiter_t *w = t->kw;
  lua_KFunction k = t->k;
  (void)status;
  if (w == NULL || w->task != NULL || t != current)
    return luaL_error(L, "a coroutine waiting for I/O was resumed from "
                         "another task or by hand");
  t->kw = NULL;
  t->k = NULL;
  if (t->pending) return raise_pending(L, t);
  return k(L, LUA_YIELD, t->kctx);
}

int ns_wait(lua_State *L, ns_waiter_t *w, double timeout,
            lua_KFunction k, lua_KContext ctx) {
  ns_task_t *t = current;
  double now, dl;
  int is_deadline = 0;
  if (t == NULL)
    return luaL_error(L, "attempt to wait outside a task");
  w->status = 0;
  if (t->unwinding) {
    if (w->cancel) w->cancel(w);
    return unwinding_error(L, t);
  }
  if (!lua_isyieldable(L))
    return luaL_error(L, "attempt to wait where the task cannot yield "
                         "(inside a metamethod, an iterator called from "
                         "C, or a C callback)");
  if (t->pending) {
    if (w->cancel) w->cancel(w);
    return raise_pending(L, t);
  }
  if (t->cancel_req) {
    /* the task cancelled itself: undo the op, yield unparked, and step()
    ** closes the coroutine */
    w->status = UV_ECANCELED;
    if (w->cancel) w->cancel(w);
    lua_pushlightuserdata(L, &suspend_key);
    return lua_yield(L, 1);
  }
  now = ns_now();
  dl = timeout >= 0 ? now + timeout : HUGE_VAL;
  if (t->deadline <= dl) {
    dl = t->deadline;
    is_deadline = 1;
  }
  if (dl <= now) {
    /* nothing to wait for: the op's own timeout is 0, or the scope ran out */
    w->status = is_deadline ? NS_EDEADLINE : UV_ETIMEDOUT;
    if (w->cancel) w->cancel(w);
    if (is_deadline) {
      push_deadline_error(L, t->deadline_id);
      return lua_error(L);
    }
    return k(L, LUA_OK, ctx);
  }
  if (dl != HUGE_VAL) {
    double ms = ceil((dl - now) * 1000.0);
    if (t->timer == NULL) {
      t->timer = malloc(sizeof *t->timer);
      if (t->timer == NULL) return luaL_error(L, "not enough memory");
      uv_timer_init(loop, t->timer);
      t->timer->data = t;
    }
    t->timer_is_deadline = is_deadline;
    /* the loop's cached time is stale after blocking work (io.popen, a
    ** long computation): without this the timer fires early */
    uv_update_time(loop);
    t->due = uv_now(loop) + (uint64_t)ms;
    if (!uv_is_active((uv_handle_t *)t->timer) || t->armed > t->due) {
      t->armed = t->due;
      uv_timer_start(t->timer, timer_cb, (uint64_t)ms, 0);
    }                         /* else it fires first and re-arms then */
    uv_ref((uv_handle_t *)t->timer);     /* a wake unreferenced it */
  } else {
    t->due = 0;
  }
  w->task = t;
  t->waiting = w;
  t->kw = w;
  t->k = k;
  t->kctx = ctx;
  lua_pushlightuserdata(L, &suspend_key);
  return lua_yieldk(L, 1, (lua_KContext)t, wait_k);
}

/* ---- running tasks ---- */

static void live_unlink(ns_task_t *t) {
  if (!ns_linked(&t->live)) return;
  ns_list_remove(&t->live);
  live_count--;
}

static void release_timer(ns_task_t *t) {
  if (t->timer) {
    t->timer->data = NULL;
    uv_close((uv_handle_t *)t->timer, free_handle_cb);
    t->timer = NULL;
  }
}

static int reset_coroutine(lua_State *co) {
#if LUA_VERSION_RELEASE_NUM >= 50406
  return lua_closethread(co, L0);
#else
  return lua_resetthread(co);
#endif
}

/* Runs t's pending <close> handlers (protected, innermost first) as t:
** task.current() is t, and a wait raises unwinding_error. Afterwards the
** error value, if any, is at index 1 of the coroutine: a handler's error
** replaces the one the task failed with, as in Lua. Returns the status. */
static int close_handlers(ns_task_t *t, int why) {
  ns_task_t *prev = current;
  int st;
  current = t;
  t->unwinding = why;
  st = reset_coroutine(t->co);
  t->unwinding = 0;
  current = prev;
  return st;
}

/* Protected: the value at 1 through its __tostring, or nothing. */
static int tostring_call(lua_State *L) {
  if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    return 1;
  return 0;
}

/* Pushes a printable form of the error at the top of co onto L0. The
** object's __tostring is user code: it runs protected on L0 (outside any
** task, so it can neither wait nor yield), and when it raises, waits or
** returns no string the text is the value's type, as lua.c says it. */
static const char *error_text(lua_State *co) {
  int top = lua_gettop(L0);
  lua_pushcfunction(L0, tostring_call);
  lua_pushvalue(co, -1);
  lua_xmove(co, L0, 1);
  if (lua_type(L0, -1) == LUA_TSTRING) {
    lua_remove(L0, -2);
    return lua_tostring(L0, -1);
  }
  if (lua_pcall(L0, 1, 1, 0) == LUA_OK && lua_type(L0, -1) == LUA_TSTRING)
    return lua_tostring(L0, -1);
  lua_settop(L0, top);
  return lua_pushfstring(L0, "(error object is a %s value)",
                         luaL_typename(co, -1));
}

/* Failed tasks nobody has joined yet sit in `orphans` with their report
** text. Joining one drops it silently; when its handle is collected (or at
** exit) nobody can join it any more: print the report, exit status 1.
** A collection is run soon after a failure so this happens promptly for
** the usual fire-and-forget spawn(handler, client). */
static void orphan_unlink(ns_task_t *t) {
  if (t->report == NULL) return;
  ns_list_remove(&t->live);
  free(t->report);
  t->report = NULL;
}

void (*ns_on_output)(int after);

static void orphan_report(ns_task_t *t) {
  if (t->report == NULL) return;
  if (ns_on_output) ns_on_output(0);
  fflush(stdout);
  fprintf(stderr, "netsh: task '%s' failed: %s\n", t->name, t->report);
  fflush(stderr);
  if (ns_on_output) ns_on_output(1);
  exit_status = 1;
  orphan_unlink(t);
}

static void gc_timer_cb(uv_timer_t *h) {
  (void)h;
  lua_gc(L0, LUA_GCCOLLECT);
}

/* Reports every failure nobody joined (main.c, at exit). */
void ns_report_orphans(void) {
  ns_link_t *l;
  if (ns_list_empty(&orphans)) return;
  lua_gc(L0, LUA_GCCOLLECT);
  while ((l = ns_list_first(&orphans)) != NULL)
    orphan_report(ns_container_of(l, ns_task_t, live));
}

/* SIGINT state (see below); finish() unhooks a task that ends. */
static volatile sig_atomic_t sigint_pending, sigint_again;
static lua_State *volatile hooked;   /* coroutine with the SIGINT hook */
static double hooked_since;          /* when the hook first let it go on */

static void finish(ns_task_t *t, int state) {
  int had_joiners = ns_cond_first(&t->done) != NULL;
  t->state = state;
  t->waiting = NULL;
  release_timer(t);
  live_unlink(t);
  if (t->pending_ref != LUA_NOREF) {
    luaL_unref(L0, LUA_REGISTRYINDEX, t->pending_ref);
    t->pending_ref = LUA_NOREF;
  }
  if (hooked == t->co) {         /* its coroutine may be collected now */
    lua_sethook(t->co, NULL, 0, 0);
    hooked = NULL;
    hooked_since = 0;
  }
  ns_cond_broadcast(&t->done, 0);
  if (had_joiners) t->retrieved = 1;
  if (t->is_main && ns_on_main_done)
    ns_on_main_done(t, state == T_FAILED);
  if (t->ref != LUA_NOREF) {
    luaL_unref(L0, LUA_REGISTRYINDEX, t->ref);
    t->ref = LUA_NOREF;
  }
}

#define NIL_ERROR "(error object is a nil value)"

/* Ends t as failed with the error at index 1 of its coroutine. The text
** on L0's top (or nil) is the report: kept for an unjoined task, printed
** by main.c for the main one; popped. A nil error becomes NIL_ERROR, so
** join, task.all and task.group see a failure whatever the value. `loud`
** reports even a quiet task (a group's child), whose group cannot see a
** failure that happens while it is being cancelled. */
static void end_failed(ns_task_t *t, int had_joiners, int loud) {
  lua_State *co = t->co;
  char *report = NULL;
  if (lua_type(L0, -1) == LUA_TSTRING) {
    if (t->is_main) {
      lua_pushvalue(L0, -1);
      lua_setfield(L0, LUA_REGISTRYINDEX, "netsh.main_traceback");
    } else if (!had_joiners && (loud || !t->quiet)) {
      report = strdup(lua_tostring(L0, -1));
    }
  }
  lua_pop(L0, 1);
  if (lua_gettop(co) == 0) lua_pushliteral(co, "error");
  lua_settop(co, 1);
  if (lua_isnil(co, 1)) {
    lua_pushliteral(co, NIL_ERROR);
    lua_replace(co, 1);
  }
  finish(t, T_FAILED);       /* unlinks t from the live list */
  if (report) {
    t->report = report;
    ns_list_insert_tail(&orphans, &t->live);
    if (!uv_is_active((uv_handle_t *)&gc_timer))
      uv_timer_start(&gc_timer, gc_timer_cb, 100, 0);
  }
}

/* The task's coroutine raised: take the report (message and traceback)
** while its stack is still there, then run its <close> handlers. */
static void fail(ns_task_t *t) {
  lua_State *co = t->co;
  int had_joiners = ns_cond_first(&t->done) != NULL;
  int want = t->is_main || (!had_joiners && !t->quiet);
  int base = lua_gettop(L0);
  const char *msg = error_text(co);            /* L0: msg */
  lua_pushvalue(co, -1);
  lua_xmove(co, L0, 1);                         /* L0: msg, err */
  if (want) luaL_traceback(L0, co, msg, t->is_main ? 1 : 0);
  else lua_pushnil(L0);                         /* L0: msg, err, tb */
  close_handlers(t, T_FAILED);
  if (lua_gettop(co) == 0) lua_pushliteral(co, "error");
  lua_settop(co, 1);
  lua_pushvalue(co, 1);
  lua_xmove(co, L0, 1);                         /* L0: msg, err, tb, err2 */
  if (want && !lua_rawequal(L0, base + 2, base + 4)) {
    /* a handler raised: its error is the task's now; say both */
    lua_pushfstring(L0, "%s\n<close> handler raised: %s",
                    lua_tostring(L0, base + 3), error_text(co));
    lua_replace(L0, base + 3);
  }
  lua_settop(L0, base + 3);
  lua_replace(L0, base + 1);                    /* L0: tb, err */
  lua_pop(L0, 1);                               /* L0: tb */
  end_failed(t, had_joiners, 0);
}

/* Cancels t: its pending wait is undone and it never resumes; its <close>
** handlers run now. A handler that raises makes it a failure with that
** error (as an exception raised in a finally block replaces the
** cancellation in Python), so the error is not lost. */
static void do_cancel(ns_task_t *t) {
  lua_State *co = t->co;
  int had_joiners = ns_cond_first(&t->done) != NULL;
  if (t->waiting) {
    ns_waiter_t *w = t->waiting;
    w->status = UV_ECANCELED;
    if (w->cancel) w->cancel(w);
    w->task = NULL;
    t->waiting = NULL;
  }
  if (close_handlers(t, T_CANCELLED) != LUA_OK) {
    lua_settop(co, 1);
    lua_pushfstring(L0, "%s\n(raised by a <close> handler of the task, "
                    "which was being cancelled)", error_text(co));
    lua_remove(L0, -2);                         /* L0: report */
    end_failed(t, had_joiners, 1);
    return;
  }
  lua_settop(co, 0);
  lua_pushliteral(co, "cancelled");
  finish(t, T_CANCELLED);
}

static void step(ns_task_t *t) {
  lua_State *co = t->co;
  ns_task_t *prev = current;
  int nres = 0, st;
  if (t->cancel_req) {
    do_cancel(t);
    return;
  }
  current = t;
  t->state = T_RUNNING;
  st = lua_resume(co, L0, t->nargs, &nres);
  t->nargs = 0;
  current = prev;
  if (st == LUA_YIELD) {
    lua_pop(co, nres);
    if (t->waiting) {
      t->state = T_WAITING;
    } else if (t->cancel_req) {
      do_cancel(t);
    } else {
      enqueue(t);   /* a bare coroutine.yield(): let the others run */
    }
  } else if (st == LUA_OK && t->cancel_req) {
    do_cancel(t);   /* cancelled itself, then ended before a checkpoint */
  } else if (st == LUA_OK) {
    t->nres = nres;
    finish(t, T_DONE);
  } else {
    fail(t);
  }
}

static void run_ready(void) {
  /* Run only what is queued now; tasks queued meanwhile run next round,
  ** so a task that yields in a loop cannot starve I/O. */
  ns_link_t *l, *last = ready_q.prev;
  turn++;
  while ((l = ns_list_first(&ready_q)) != NULL) {
    ns_list_remove(l);
    step(ns_container_of(l, ns_task_t, ready));
    if (l == last) break;
  }
  if (ns_list_empty(&ready_q)) uv_idle_stop(&idle_h);
}

static void check_cb(uv_check_t *h) {
  (void)h;
  run_ready();
  if (live_count == 0) uv_stop(loop);
}

/* Runs the loop until every task has ended. Returns the live task count
** (non-zero when they are all blocked on nothing: a deadlock). */
int ns_run(void) {
  if (live_count == 0) return 0;
  uv_run(loop, UV_RUN_DEFAULT);
  return live_count;
}

/* ---- spawning ---- */

static void default_name(lua_State *L, int fidx, char *buf, size_t n) {
  lua_Debug ar;
  lua_pushvalue(L, fidx);
  if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0)
    snprintf(buf, n, "%s:%d", ar.short_src, ar.linedefined);
  else
    snprintf(buf, n, "%s", ar.short_src);
}

/* Function and nargs arguments on L's top -> task handle on L's top. */
ns_task_t *ns_spawn(lua_State *L, int nargs, const char *name) {
  int fidx = lua_gettop(L) - nargs;
  ns_task_t *t;
  lua_State *co;
  luaL_checktype(L, fidx, LUA_TFUNCTION);
  t = lua_newuserdatauv(L, sizeof *t, 1);
  memset(t, 0, sizeof *t);
  t->ref = LUA_NOREF;
  t->pending_ref = LUA_NOREF;
  t->state = T_DONE;           /* harmless until fully made */
  t->deadline = HUGE_VAL;
  ns_cond_init(&t->done);
  luaL_setmetatable(L, TASK_MT);
  co = lua_newthread(L);
  lua_setiuservalue(L, -2, 1);   /* handle.uv1 = co */
  t->co = co;
  if (name) snprintf(t->name, sizeof t->name, "%s", name);
  else default_name(L, fidx, t->name, sizeof t->name);
  lua_insert(L, fidx);           /* handle, f, args... */
  lua_xmove(L, co, nargs + 1);
  t->nargs = nargs;
  lua_pushvalue(L, -1);
  t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  ns_list_insert_tail(&live_list, &t->live);
  live_count++;
  enqueue(t);
  return t;
}

void ns_interrupt(ns_task_t *t, const char *msg) {
  if (t->state >= T_DONE) return;
  lua_pushstring(L0, msg);
  if (t->pending_ref != LUA_NOREF)
    luaL_unref(L0, LUA_REGISTRYINDEX, t->pending_ref);
  t->pending_ref = luaL_ref(L0, LUA_REGISTRYINDEX);
  t->pending = PEND_INTERRUPT;
  if (t->waiting) ns_cancel(t->waiting, NS_EINTR);
}

/* ---- SIGINT: a hook for busy tasks, an async for parked ones ----
** The hook interrupts the task that is running when Ctrl-C comes only if
** it is the foreground one (ns_foreground), or if it keeps the loop for
** SIGINT_STUCK seconds (or a second Ctrl-C comes): a background task
** that merely happens to run then goes on, and the async delivers the
** Ctrl-C (ns_on_sigint). One more Ctrl-C while nothing took it: exit. */

#define SIGINT_STUCK 1.0

static uv_async_t sigint_async;
volatile sig_atomic_t ns_sigint_count;
void (*ns_on_sigint)(void);
ns_task_t *ns_foreground;    /* set by main.c and the REPL */

static void sigint_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (sigint_pending && !sigint_again && current && current->co == L &&
      ns_foreground && current != ns_foreground) {
    double now = ns_now();
    if (hooked_since == 0) hooked_since = now;
    if (now - hooked_since < SIGINT_STUCK) {
      lua_sethook(L, sigint_hook, LUA_MASKCOUNT, 1000);  /* look later */
      return;
    }
  }
  lua_sethook(L, NULL, 0, 0);
  hooked = NULL;
  hooked_since = 0;
  if (sigint_pending) {
    sigint_pending = 0;
    sigint_again = 0;
    lua_pushliteral(L, "interrupted");  /* no position: it is nobody's line */
    lua_error(L);
  }
}

static void sigint_handler(int sig) {
  (void)sig;
  if (sigint_pending) {
    if (hooked && !sigint_again) {       /* a hook is being patient */
      sigint_again = 1;
      return;
    }
    _exit(130);                          /* still nothing: give up now */
  }
  sigint_pending = 1;
  ns_sigint_count++;
  if (current && current->co) {
    hooked = current->co;
    lua_sethook(current->co, sigint_hook,
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  }
  uv_async_send(&sigint_async);
}

static void sigint_async_cb(uv_async_t *h) {
  (void)h;
  if (!sigint_pending) return;            /* the hook already raised it */
  sigint_pending = 0;
  sigint_again = 0;
  if (hooked) {
    lua_sethook(hooked, NULL, 0, 0);
    hooked = NULL;
    hooked_since = 0;
  }
  if (ns_on_sigint) ns_on_sigint();
}


/* ---- Lua API: task.core ---- */

static ns_task_t *check_task(lua_State *L, int i) {
  return luaL_checkudata(L, i, TASK_MT);
}

static int lib_spawn(lua_State *L) {
  const char *name = NULL;
  int n = lua_gettop(L);
  if (lua_istable(L, 1) && n == 1) {
    /* spawn{name = "x", fn, args...} */
    int i, len = (int)luaL_len(L, 1);
    lua_getfield(L, 1, "name");
    name = lua_tostring(L, -1);
    if (name == NULL && !lua_isnil(L, -1))
      return luaL_argerror(L, 1, "'name' must be a string");
    lua_pushvalue(L, -1);
    lua_insert(L, 1);        /* keep the name string alive below */
    lua_pop(L, 1);
    if (len < 1 || lua_rawgeti(L, 2, 1) != LUA_TFUNCTION)
      return luaL_argerror(L, 1, "function expected at index 1");
    for (i = 2; i <= len; i++) lua_rawgeti(L, 2, i);
    ns_spawn(L, len - 1, name);
    return 1;
  }
  luaL_checktype(L, 1, LUA_TFUNCTION);
  ns_spawn(L, n - 1, NULL);
  return 1;
}

static double opt_timeout(lua_State *L, int i) {
  if (lua_isnoneornil(L, i)) return -1;
  {
    double s = luaL_checknumber(L, i);
    return s < 0 ? -1 : s;
  }
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  (void)L; (void)status; (void)ctx;
  return 0;
}

static int lib_sleep(lua_State *L) {
  double s = luaL_optnumber(L, 1, 0);
  if (current == NULL)
    return luaL_error(L, "attempt to sleep outside a task");
  if (!(s > 0)) {
    /* sleep(0): let every other ready task run once */
    if (current->unwinding) return unwinding_error(L, current);
    if (!lua_isyieldable(L))
      return luaL_error(L, "attempt to sleep where the task cannot yield");
    if (current->pending) return raise_pending(L, current);
    lua_pushlightuserdata(L, &suspend_key);
    return lua_yield(L, 1);
  }
  current->selfw.cancel = NULL;
  return ns_wait(L, &current->selfw, s, sleep_k, 0);
}

static int lib_now(lua_State *L) {
  lua_pushnumber(L, ns_now());
  return 1;
}

static int lib_current(lua_State *L) {
  if (current == NULL || current->ref == LUA_NOREF) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, current->ref);
  return 1;
}

static int push_outcome(lua_State *L, ns_task_t *t) {
  lua_State *co = t->co;
  t->retrieved = 1;
  orphan_unlink(t);
  if (t->state == T_DONE) {
    int i, n = t->nres, base = lua_gettop(co) - n;
    luaL_checkstack(L, n + 1, "too many results");
    if (!lua_checkstack(co, n)) return luaL_error(L, "stack overflow");
    for (i = 1; i <= n; i++) lua_pushvalue(co, base + i);
    lua_xmove(co, L, n);
    return n;
  }
  lua_pushnil(L);
  lua_pushvalue(co, 1);          /* the error value, or "cancelled" */
  lua_xmove(co, L, 1);
  return 2;
}

static int join_k(lua_State *L, int status, lua_KContext ctx) {
  ns_task_t *t = (ns_task_t *)ctx;
  (void)status;
  if (t->state >= T_DONE) return push_outcome(L, t);
  if (current->selfw.status == UV_ETIMEDOUT) return ns_fail(L, UV_ETIMEDOUT);
  return ns_cond_wait(L, &t->done, &current->selfw, -1, join_k, ctx);
}

static int meth_join(lua_State *L) {
  ns_task_t *t = check_task(L, 1);
  double timeout = opt_timeout(L, 2);
  if (t->state >= T_DONE) return push_outcome(L, t);
  if (t == current)
    return luaL_error(L, "a task cannot join itself");
  if (current == NULL)
    return luaL_error(L, "attempt to join outside a task");
  return ns_cond_wait(L, &t->done, &current->selfw, timeout, join_k,
                      (lua_KContext)t);
}

static int meth_cancel(lua_State *L) {
  ns_task_t *t = check_task(L, 1);
  if (t->state >= T_DONE) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (t == current) {
    /* can't close a running coroutine: stop it at its next wait */
    t->cancel_req = 1;
    lua_pushboolean(L, 1);
    return 1;
  }
  if (t->state == T_READY) {
    t->cancel_req = 1;           /* step() closes it when dequeued */
  } else {
    /* parked (or running an outer resume of ours): close it now */
    if (t->state == T_RUNNING) {
      t->cancel_req = 1;
    } else {
      do_cancel(t);
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int meth_status(lua_State *L) {
  ns_task_t *t = check_task(L, 1);
  if (t->cancel_req && t->state < T_DONE) lua_pushliteral(L, "cancelling");
  else lua_pushstring(L, state_names[t->state]);
  return 1;
}

static int meth_name(lua_State *L) {
  lua_pushstring(L, check_task(L, 1)->name);
  return 1;
}

static int meta_tostring(lua_State *L) {
  ns_task_t *t = check_task(L, 1);
  lua_pushfstring(L, "task{%s %s}: %p", t->name, state_names[t->state],
                  (void *)t);
  return 1;
}

static int meta_gc(lua_State *L) {
  ns_task_t *t = check_task(L, 1);
  /* only reached for ended tasks, or at lua_close */
  if (t->waiting) {
    t->waiting->task = NULL;
    t->waiting = NULL;
  }
  release_timer(t);
  if (t->report) orphan_report(t);
  else live_unlink(t);
  return 0;
}

/* core.interrupt(handle, value): raise value at the task's wait point. */
static int lib_interrupt(lua_State *L) {
  ns_task_t *t = check_task(L, 1);
  if (t->state >= T_DONE) return 0;
  luaL_checkany(L, 2);
  lua_pushvalue(L, 2);
  if (t->pending_ref != LUA_NOREF)
    luaL_unref(L, LUA_REGISTRYINDEX, t->pending_ref);
  t->pending_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->pending = PEND_INTERRUPT;
  if (t->waiting) ns_cancel(t->waiting, NS_EINTR);
  return 0;
}

/* core.uninterrupt(handle, value): drop a pending interrupt by value. */
static int lib_uninterrupt(lua_State *L) {
  ns_task_t *t = check_task(L, 1);
  if (t->pending != PEND_INTERRUPT) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->pending_ref);
  if (lua_rawequal(L, -1, 2)) {
    luaL_unref(L, LUA_REGISTRYINDEX, t->pending_ref);
    t->pending_ref = LUA_NOREF;
    t->pending = PEND_NONE;
  }
  return 0;
}

static int lib_quiet(lua_State *L) {
  check_task(L, 1)->quiet = lua_toboolean(L, 2);
  return 0;
}

/* core.deadline_push(seconds) -> id, previous deadline, previous id */
static int lib_deadline_push(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  double dl;
  if (current == NULL) return luaL_error(L, "task.timeout outside a task");
  lua_pushinteger(L, ++deadline_seq);
  lua_pushnumber(L, current->deadline);
  lua_pushinteger(L, current->deadline_id);
  dl = ns_now() + (s > 0 ? s : 0);
  if (dl < current->deadline) {
    current->deadline = dl;
    current->deadline_id = deadline_seq;
  }
  return 3;
}

static int lib_deadline_pop(lua_State *L) {
  if (current == NULL) return 0;
  current->deadline = luaL_checknumber(L, 1);
  current->deadline_id = (int)luaL_checkinteger(L, 2);
  return 0;
}

/* core.is_deadline(err [, id]) */
static int lib_is_deadline(lua_State *L) {
  int yes = 0;
  if (lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, DEADLINE_MT);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (yes && !lua_isnoneornil(L, 2)) {
      lua_getfield(L, 1, "deadline");
      yes = lua_tointeger(L, -1) == lua_tointeger(L, 2);
      lua_pop(L, 1);
    }
  }
  lua_pushboolean(L, yes);
  return 1;
}

static int deadline_tostring(lua_State *L) {
  lua_pushliteral(L, "timeout");
  return 1;
}

static int lib_list(lua_State *L) {
  ns_link_t *l;
  int i = 0;
  lua_newtable(L);
  ns_list_foreach(l, &live_list) {
    ns_task_t *t = ns_container_of(l, ns_task_t, live);
    if (t->ref == LUA_NOREF) continue;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

static int lib_is_task(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, TASK_MT) != NULL);
  return 1;
}

static int lib_count(lua_State *L) {
  lua_pushinteger(L, live_count);
  return 1;
}

/* ---- conditions for Lua: task.cond() ---- */

typedef struct { ns_cond_t c; } lcond_t;

static int lib_cond(lua_State *L) {
  lcond_t *c = lua_newuserdatauv(L, sizeof *c, 0);
  ns_cond_init(&c->c);
  luaL_setmetatable(L, COND_MT);
  return 1;
}

static int cond_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  if (current->selfw.status == UV_ETIMEDOUT) return ns_fail(L, UV_ETIMEDOUT);
  lua_pushboolean(L, 1);
  return 1;
}

static int cond_wait(lua_State *L) {
  lcond_t *c = luaL_checkudata(L, 1, COND_MT);
  double timeout = opt_timeout(L, 2);
  if (current == NULL) return luaL_error(L, "attempt to wait outside a task");
  return ns_cond_wait(L, &c->c, &current->selfw, timeout, cond_k, 0);
}

static int cond_signal(lua_State *L) {
  lcond_t *c = luaL_checkudata(L, 1, COND_MT);
  ns_cond_signal(&c->c, 0);
  return 0;
}

static int cond_broadcast(lua_State *L) {
  lcond_t *c = luaL_checkudata(L, 1, COND_MT);
  ns_cond_broadcast(&c->c, 0);
  return 0;
}

static int cond_gc(lua_State *L) {
  lcond_t *c = luaL_checkudata(L, 1, COND_MT);
  ns_waiter_t *w;
  /* a parked waiter keeps the cond on its stack, so the list is empty
  ** here unless the state is closing; unlink defensively */
  while ((w = ns_cond_first(&c->c)) != NULL) {
    ns_cond_remove(w);
    w->task = NULL;
  }
  return 0;
}

static const luaL_Reg task_methods[] = {
  {"join", meth_join},
  {"cancel", meth_cancel},
  {"status", meth_status},
  {"name", meth_name},
  {NULL, NULL}
};

static const luaL_Reg cond_methods[] = {
  {"wait", cond_wait},
  {"signal", cond_signal},
  {"broadcast", cond_broadcast},
  {NULL, NULL}
};

static const luaL_Reg lib[] = {
  {"spawn", lib_spawn},
  {"sleep", lib_sleep},
  {"now", lib_now},
  {"current", lib_current},
  {"cond", lib_cond},
  {"interrupt", lib_interrupt},
  {"quiet", lib_quiet},
  {"uninterrupt", lib_uninterrupt},
  {"deadline_push", lib_deadline_push},
  {"deadline_pop", lib_deadline_pop},
  {"is_deadline", lib_is_deadline},
  {"list", lib_list},
  {"count", lib_count},
  {"is_task", lib_is_task},
  {NULL, NULL}
};

int luaopen_task_core(lua_State *L) {
  luaL_newmetatable(L, TASK_MT);
  luaL_newlib(L, task_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, COND_MT);
  luaL_newlib(L, cond_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, cond_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, DEADLINE_MT);
  lua_pushcfunction(L, deadline_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newlib(L, lib);
  lua_pushlightuserdata(L, &suspend_key);
  lua_setfield(L, -2, "SUSPEND");
  return 1;
}

/* ---- setup and teardown (main.c) ---- */

static uv_loop_t loop_storage;

/* SIGPIPE. A write to a socket whose peer is gone must come back as EPIPE
** (nil, "closed"), so the signal cannot be left to kill us; but when the
** reader of our stdout or stderr goes (`netsh ... | head -1`), netsh must
** stop as lua5.4 and every Unix filter stop: killed by SIGPIPE (status
** 141, which `set -o pipefail` sees), no traceback, whatever was writing
** (print, io.write, a C library). The signal names no descriptor, so the
** handler asks whether fd 1 or 2 is a pipe or socket with its reader gone
** (POLLERR); if neither is, the write that raised it just fails. A
** handler, unlike SIG_IGN, is reset by exec: programs started by
** os.execute or io.popen get SIGPIPE's default, as from a shell. */
static void sigpipe_handler(int sig) {
  struct pollfd p[2];
  int saved = errno;
  p[0].fd = 1;
  p[1].fd = 2;
  p[0].events = p[1].events = 0;  /* POLLERR is reported regardless */
  if (poll(p, 2, 0) > 0 && ((p[0].revents | p[1].revents) & POLLERR)) {
    signal(sig, SIG_DFL);
    raise(sig);                   /* delivered as the handler returns */
  }
  errno = saved;
}

int ns_loop_init(lua_State *L) {
  struct sigaction sa;
  loop = &loop_storage;
  if (uv_loop_init(loop) != 0) return -1;
  L0 = L;
  uv_timer_init(loop, &gc_timer);
  uv_unref((uv_handle_t *)&gc_timer);
  uv_check_init(loop, &check_h);
  uv_check_start(&check_h, check_cb);
  uv_unref((uv_handle_t *)&check_h);
  uv_idle_init(loop, &idle_h);
  uv_async_init(loop, &sigint_async, sigint_async_cb);
  uv_unref((uv_handle_t *)&sigint_async);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = sigint_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = sigpipe_handler;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGPIPE, &sa, NULL);
  return 0;
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* After lua_close: let libuv finish every close callback. Handles still
** open here are ours (check, idle, async) or leaked by a binding. */
int ns_loop_close(void) {
  /* a late SIGINT (timeout(1) signals the whole process group) must not
  ** reach uv_async_send on a closed loop */
  signal(SIGINT, SIG_DFL);
  closing = 1;
  uv_walk(loop, close_walk_cb, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  if (uv_loop_close(loop) != 0) {
    fprintf(stderr, "netsh: warning: libuv loop still busy at exit\n");
    return -1;
  }
  return 0;
}

ns_task_t *ns_task_from_handle(lua_State *L, int i) {
  return luaL_testudata(L, i, TASK_MT);
}

void ns_task_mark_main(ns_task_t *t) {
  t->is_main = 1;
  t->quiet = 1;
}

void ns_stop(void) { uv_stop(loop); }
