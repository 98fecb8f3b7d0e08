// Routes C11 thrd_create/thrd_join/thrd_detach through pthread_* so that ThreadSanitizer's
// pthread interceptors see librdkafka's threads (glibc >= 2.34 implements thrd_create with an
// internal pthread_create that TSan (GCC 12) does not intercept: such threads crash in TSan's
// allocator). Test-environment tool only; LD_PRELOAD it.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

struct start { thrd_start_t func; void *arg; };

static void *trampoline(void *p) {
  struct start s = *(struct start *)p;
  free(p);
  return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg) {
  struct start *s = malloc(sizeof *s);
  if (!s) return thrd_nomem;
  s->func = func;
  s->arg = arg;
  int err = pthread_create((pthread_t *)thr, NULL, trampoline, s);
  if (err) { free(s); return err == 11 /* EAGAIN */ ? thrd_nomem : thrd_error; }
  return thrd_success;
}

int thrd_join(thrd_t thr, int *res) {
  void *r = NULL;
  if (pthread_join((pthread_t)thr, &r) != 0) return thrd_error;
  if (res) *res = (int)(intptr_t)r;
  return thrd_success;
}

int thrd_detach(thrd_t thr) { return pthread_detach((pthread_t)thr) == 0 ? thrd_success : thrd_error; }

// C11 mutexes and condition variables are layout-compatible with their pthread counterparts in
// glibc; routing them through pthread_* lets TSan see librdkafka's locking (its own hand-offs
// of messages between threads), which it otherwise cannot, reporting false races.
#include <errno.h>
#include <time.h>

static int to_thrd(int err) {
  switch (err) {
    case 0: return thrd_success;
    case EBUSY: return thrd_busy;
    case ETIMEDOUT: return thrd_timedout;
    case ENOMEM: return thrd_nomem;
    default: return thrd_error;
  }
}

int mtx_init(mtx_t *m, int type) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  if (type & mtx_recursive) pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  int err = pthread_mutex_init((pthread_mutex_t *)m, &a);
  pthread_mutexattr_destroy(&a);
  return to_thrd(err);
}
int mtx_lock(mtx_t *m) { return to_thrd(pthread_mutex_lock((pthread_mutex_t *)m)); }
int mtx_trylock(mtx_t *m) { return to_thrd(pthread_mutex_trylock((pthread_mutex_t *)m)); }
int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts) {
  return to_thrd(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}
int mtx_unlock(mtx_t *m) { return to_thrd(pthread_mutex_unlock((pthread_mutex_t *)m)); }
void mtx_destroy(mtx_t *m) { pthread_mutex_destroy((pthread_mutex_t *)m); }

int cnd_init(cnd_t *c) { return to_thrd(pthread_cond_init((pthread_cond_t *)c, NULL)); }
int cnd_signal(cnd_t *c) { return to_thrd(pthread_cond_signal((pthread_cond_t *)c)); }
int cnd_broadcast(cnd_t *c) { return to_thrd(pthread_cond_broadcast((pthread_cond_t *)c)); }
int cnd_wait(cnd_t *c, mtx_t *m) { return to_thrd(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m)); }
int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts) {
  return to_thrd(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}
void cnd_destroy(cnd_t *c) { pthread_cond_destroy((pthread_cond_t *)c); }
