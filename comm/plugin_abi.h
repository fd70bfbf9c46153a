/* The vendor-collectives plug-in ABI: a plain C contract between dpt and a shared object that a
 * vendor builds on its own collectives library. dpt loads the object with dlopen
 * (comm { backend: "plugin" plugin_path: "libfoo.so" }), calls its one exported entry point and
 * drives everything through the returned table of function pointers. No C++ types cross it.
 * comm/plugins/gloo/ is the reference implementation (Gloo over TCP); README "Collective plug-ins".
 *
 * Versioning (the way NCCL versions its net and tuner plug-in structs):
 *   - The entry point's name carries the major version: dpt_coll_plugin_v1. A plug-in may export
 *     several (v1, v2, ...) to serve older and newer dpt builds from one file.
 *   - The table starts with abi_major, abi_minor and struct_size. dpt refuses a table whose
 *     abi_major differs from DPT_COLL_ABI_VERSION_MAJOR, or whose struct_size is below the size
 *     of the fields dpt needs.
 *   - A minor version only appends fields at the end of the table (struct_size says how many a
 *     plug-in filled); a major version is free to change anything, under a new entry name.
 *
 * The contract of every call:
 *   - Threading: dpt makes at most one call at a time on a communicator (it serialises them),
 *     possibly from different threads; abort() is the exception and may come from any thread at
 *     any time, also while another call is in progress.
 *   - Every rank makes the same calls in the same order with the same counts, dtypes, ops and
 *     roots (the caller's duty, as with NCCL; a plug-in need not detect a mismatch).
 *   - count == 0 is valid and returns DPT_COLL_OK; it need not communicate at all.
 *   - In place: all_reduce with send == recv; all_gather with send == recv + rank * count
 *     elements. reduce_scatter's send and recv never overlap. Otherwise buffers do not overlap.
 *   - Buffers are host memory, valid until the call returns (calls are blocking).
 *   - all_reduce gives the same bits on every rank (reduce_scatter: as all_reduce would). Integer
 *     sums wrap modulo 2^bits; float max and min propagate NaN. Averages are not part of the ABI:
 *     dpt asks for a sum and divides, so every backend rounds an average the same way.
 *   - A call that cannot finish within the init timeout returns DPT_COLL_ERR_TIMEOUT; a peer that
 *     closed or died gives DPT_COLL_ERR_REMOTE. After any error the communicator is unusable
 *     except for last_error(), abort() and destroy().
 *   - abort() tears the communicator down so that peers blocked in collectives with this rank
 *     fail fast (close the connections); calls in progress or made later return
 *     DPT_COLL_ERR_ABORTED. Calling it more than once is harmless.
 *   - A dtype or op the library cannot reduce gives DPT_COLL_ERR_UNSUPPORTED (dpt reports it).
 */
#ifndef DPT_COMM_PLUGIN_ABI_H_
#define DPT_COMM_PLUGIN_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DPT_COLL_ABI_VERSION_MAJOR 1
#define DPT_COLL_ABI_VERSION_MINOR 0
/* The symbol dpt looks up: const dpt_coll_plugin_v1_t* dpt_coll_plugin_v1(void). */
#define DPT_COLL_PLUGIN_SYMBOL "dpt_coll_plugin_v1"

typedef enum {
  DPT_COLL_OK = 0,
  DPT_COLL_ERR_INVALID = 1,     /* bad argument (null pointer, root out of range, ...) */
  DPT_COLL_ERR_UNSUPPORTED = 2, /* dtype or op the library cannot do */
  DPT_COLL_ERR_TIMEOUT = 3,     /* not finished within the timeout */
  DPT_COLL_ERR_REMOTE = 4,      /* a peer closed its connection, died or failed */
  DPT_COLL_ERR_ABORTED = 5,     /* abort() was called on this communicator */
  DPT_COLL_ERR_BOOTSTRAP = 6,   /* the bootstrap callback failed during init */
  DPT_COLL_ERR_INTERNAL = 7     /* anything else */
} dpt_coll_status_t;

typedef enum {
  DPT_COLL_F32 = 0,
  DPT_COLL_F64 = 1,
  DPT_COLL_BF16 = 2, /* bfloat16: the top 16 bits of an IEEE float32 */
  DPT_COLL_F16 = 3,  /* IEEE 754 binary16 */
  DPT_COLL_I32 = 4,
  DPT_COLL_I64 = 5
} dpt_coll_dtype_t;

typedef enum { DPT_COLL_SUM = 0, DPT_COLL_MAX = 1, DPT_COLL_MIN = 2 } dpt_coll_op_t;

/* Provided by dpt (over MPI): every rank passes `bytes` bytes (the same number on every rank) and
 * receives size * bytes in rank order in `recv`. Collective, blocking, bounded by dpt's timeout.
 * Returns 0 on success, non-zero on failure (the plug-in then fails init with
 * DPT_COLL_ERR_BOOTSTRAP). Only valid during init(). */
typedef int (*dpt_coll_allgather_fn)(void* state, const void* send, size_t bytes, void* recv);

typedef struct {
  int rank;                        /* 0 <= rank < size */
  int size;                        /* >= 1 */
  double timeout_s;                /* per call (and for init's rendezvous), > 0 */
  dpt_coll_allgather_fn allgather; /* bootstrap exchange, see above */
  void* allgather_state;           /* passed back to allgather unchanged */
} dpt_coll_init_args_t;

/* A plug-in's communicator: opaque to dpt. */
typedef struct dpt_coll_comm dpt_coll_comm_t;

typedef struct {
  uint32_t abi_major;   /* DPT_COLL_ABI_VERSION_MAJOR the plug-in was built against */
  uint32_t abi_minor;   /* DPT_COLL_ABI_VERSION_MINOR the plug-in was built against */
  uint32_t struct_size; /* sizeof(dpt_coll_plugin_v1_t) the plug-in was built with */
  const char* name;     /* short name, e.g. "gloo" (shown in logs and errors) */
  const char* version;  /* free text: the plug-in's and its library's versions */

  /* Collective over all ranks: builds this rank's communicator in *comm. On failure *comm is
   * left null and last_error(NULL) describes the failure. */
  int (*init)(const dpt_coll_init_args_t* args, dpt_coll_comm_t** comm);
  /* recv[i] = op over ranks of send[i], i < count. */
  int (*all_reduce)(dpt_coll_comm_t* comm, const void* send, void* recv, size_t count,
                    dpt_coll_dtype_t dtype, dpt_coll_op_t op);
  /* buffer (count elements) on every rank = buffer on root. */
  int (*broadcast)(dpt_coll_comm_t* comm, void* buffer, size_t count, dpt_coll_dtype_t dtype,
                   int root);
  /* recv (size * count elements) = every rank's count elements of send, in rank order. */
  int (*all_gather)(dpt_coll_comm_t* comm, const void* send, void* recv, size_t count,
                    dpt_coll_dtype_t dtype);
  /* recv (count elements) = op over ranks of send[rank * count, (rank + 1) * count). */
  int (*reduce_scatter)(dpt_coll_comm_t* comm, const void* send, void* recv, size_t count,
                        dpt_coll_dtype_t dtype, dpt_coll_op_t op);
  /* Returns when every rank has entered barrier(). */
  int (*barrier)(dpt_coll_comm_t* comm);
  /* See the contract above. Any thread, any time, idempotent. */
  int (*abort)(dpt_coll_comm_t* comm);
  /* Frees the communicator (after abort() too). Not collective. */
  void (*destroy)(dpt_coll_comm_t* comm);
  /* One line describing the last failed call on comm (comm == NULL: the last failed init on
   * this thread); "" when none. Valid until the next call on comm. */
  const char* (*last_error)(const dpt_coll_comm_t* comm);
} dpt_coll_plugin_v1_t;

/* The entry point a plug-in exports (extern "C", default visibility). Returns a table with static
 * storage duration; dpt calls it once per load. */
typedef const dpt_coll_plugin_v1_t* (*dpt_coll_plugin_v1_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* DPT_COMM_PLUGIN_ABI_H_ */
