/* http_curl_multi.c - the libcurl floor for http_bench.sh: TOTAL GETs of
** URL with C in flight from plain C on libcurl's multi interface, with no
** Lua, no libuv and no response tables, and the options netsh's http
** module sets on every request (a share with cookies, DNS, TLS sessions
** and connections; the cookie engine; Accept-Encoding for every built-in
** decoder; http/https only; redirects followed; a User-Agent; no proxy).
** Easy handles are reused as they finish. What netsh's concurrent client
** costs above this is netsh's; what this costs above wrk is libcurl's.
**
** Usage: http_curl_multi URL TOTAL C   -> prints the seconds it took
** (after a first round of C requests that opens the connections).
** Build: cc -O2 -o http_curl_multi http_curl_multi.c -lcurl */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static size_t sink(char *p, size_t size, size_t n, void *ud) {
  (void)p; (void)ud;
  return size * n;
}

static CURL *make(CURLSH *sh, const char *url) {
  CURL *e = curl_easy_init();
  if (e == NULL) return NULL;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_SHARE, sh);
  curl_easy_setopt(e, CURLOPT_COOKIEFILE, "");
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "netsh-bench");
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  return e;
}

/* Runs total GETs, c at a time; returns the number that failed. */
static int run(CURLM *m, CURL **h, int c, int total, const char *url) {
  int started = 0, done = 0, failed = 0, running, left, i;
  for (i = 0; i < c && started < total; i++, started++)
    curl_multi_add_handle(m, h[i]);
  while (done < total) {
    CURLMsg *msg;
    if (curl_multi_perform(m, &running) != CURLM_OK) return total - done;
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      long code = 0;
      CURL *e = msg->easy_handle;
      if (msg->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
      if (msg->data.result != CURLE_OK || code != 200) failed++;
      done++;
      curl_multi_remove_handle(m, e);
      if (started < total) {
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_multi_add_handle(m, e);
        started++;
      }
    }
    if (done < total && curl_multi_poll(m, NULL, 0, 5000, NULL) != CURLM_OK)
      return total - done;
  }
  return failed;
}

int main(int argc, char **argv) {
  const char *url;
  int total, c, i, failed;
  CURLM *m;
  CURLSH *sh;
  CURL **h;
  struct timespec t0, t1;
  if (argc != 4 || (total = atoi(argv[2])) < 1 || (c = atoi(argv[3])) < 1) {
    fprintf(stderr, "usage: http_curl_multi URL TOTAL C\n");
    return 2;
  }
  url = argv[1];
  curl_global_init(CURL_GLOBAL_DEFAULT);
  m = curl_multi_init();
  sh = curl_share_init();
  h = calloc((size_t)c, sizeof *h);
  if (m == NULL || sh == NULL || h == NULL) return 1;
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 128L);
  curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
  curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  for (i = 0; i < c; i++)
    if ((h[i] = make(sh, url)) == NULL) return 1;
  if (run(m, h, c, c, url) != 0) {             /* warm: c connections */
    fprintf(stderr, "http_curl_multi: warm-up requests failed\n");
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  failed = run(m, h, c, total, url);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (failed) {
    fprintf(stderr, "http_curl_multi: %d requests failed\n", failed);
    return 1;
  }
  printf("%.6f\n", (double)(t1.tv_sec - t0.tv_sec) +
         (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  for (i = 0; i < c; i++) curl_easy_cleanup(h[i]);
  curl_multi_cleanup(m);
  curl_share_cleanup(sh);
  curl_global_cleanup();
  return 0;
}
