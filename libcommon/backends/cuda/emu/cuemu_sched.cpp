/* cuemu_sched.cpp — backends layer, test support: kernel launches of the
 * CPU emulation of CUDA (see include/cuemu.h). Blocks run one after another;
 * a block's threads are fibers switched at barriers. On x86-64 a fiber
 * switch is a few instructions (cuemu_switch below: callee-saved registers,
 * the stack pointer, the float control words); elsewhere ucontext, whose
 * switches make a system call each. */
#include "cuemu.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <vector>

#if defined(__x86_64__) && !defined(SIMA_CUEMU_UCONTEXT)
#define CUEMU_FAST_SWITCH 1
/* Saves the callee-saved registers on the current stack, stores the stack
 * pointer in *from, and resumes the fiber whose stack pointer is `to`
 * (saved the same way, or made by fiber_start). The float control words
 * (MXCSR, x87) are shared: nothing here changes them. */
extern "C" void cuemu_switch(void **from, void *to);
asm(".text\n"
    ".globl cuemu_switch\n"
    ".type cuemu_switch,@function\n"
    "cuemu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size cuemu_switch, .-cuemu_switch\n");
#endif

thread_local cuemu_thread *cuemu_cur_thread;
thread_local cuemu_grid *cuemu_cur_grid;

namespace {

enum fiber_state { F_RUN, F_AT_BLOCK, F_AT_WARP, F_DONE };

constexpr size_t STACK_BYTES = 256 * 1024;
constexpr unsigned MAX_THREADS = 1024;
constexpr size_t MAX_DYN_SMEM = 227 * 1024;   /* an H100's opt-in limit per block */

struct fiber {
#ifdef CUEMU_FAST_SWITCH
    void *sp;
#else
    ucontext_t ctx;
#endif
    cuemu_thread t;
    fiber_state state;
};

struct block_run {
    std::vector<fiber> f;
    /* warp exchange slots [2][threads], used alternately by a lane's
     * successive exchanges: a fast lane's next post cannot overwrite a
     * value a slow lane has yet to read, so one barrier per exchange does */
    std::vector<uint64_t> exch;
    std::vector<uint8_t> parity;  /* [threads] which half a lane uses next */
#ifdef CUEMU_FAST_SWITCH
    void *sched_sp;
#else
    ucontext_t sched;
#endif
    const std::function<void()> *body;
    unsigned cur;
};

thread_local block_run *cur_block;
thread_local bool direct_mode;   /* a CU_LAUNCH_NOSYNC kernel runs: no fibers */
thread_local std::vector<char *> stacks;   /* one per thread index, reused */

[[noreturn]] void fail(const char *what)
{
    fprintf(stderr, "cuemu: %s (block %u,%u,%u)\n", what, cuemu_cur_grid->bid.x,
            cuemu_cur_grid->bid.y, cuemu_cur_grid->bid.z);
    abort();
}

char *stack_for(unsigned i)
{
    while (stacks.size() <= i) {
        void *p = mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            perror("cuemu: mmap of a fiber stack");
            abort();
        }
        stacks.push_back((char *)p);
    }
    return stacks[i];
}

#ifdef CUEMU_FAST_SWITCH
void to_scheduler(block_run *b, fiber &me) { cuemu_switch(&me.sp, b->sched_sp); }
void to_fiber(block_run *b, fiber &f) { cuemu_switch(&b->sched_sp, f.sp); }
#else
void to_scheduler(block_run *b, fiber &me)
{
    if (swapcontext(&me.ctx, &b->sched) != 0) fail("swapcontext failed");
}
void to_fiber(block_run *b, fiber &f)
{
    if (swapcontext(&b->sched, &f.ctx) != 0) fail("swapcontext failed");
}
#endif

void fiber_entry()
{
    block_run *b = cur_block;
    (*b->body)();
    fiber &me = b->f[b->cur];
    me.state = F_DONE;
    to_scheduler(b, me);   /* never resumed */
    fail("a finished fiber was resumed");
}

/* A new fiber on stack i: the first switch to it "returns" into fiber_entry. */
void fiber_start(fiber &f, unsigned i, block_run *b)
{
    char *stack = stack_for(i);
#ifdef CUEMU_FAST_SWITCH
    (void)b;
    /* the frame cuemu_switch pops: six registers, the return address;
     * placed so that fiber_entry starts with the stack pointer 8 past a
     * 16-byte boundary, as after a call */
    uintptr_t top = ((uintptr_t)(stack + STACK_BYTES) & ~(uintptr_t)15) - 8;
    void **sp = (void **)top;
    *--sp = (void *)fiber_entry;        /* ret target */
    for (int r = 0; r < 6; r++) *--sp = nullptr;
    f.sp = sp;
#else
    if (getcontext(&f.ctx) != 0) fail("getcontext failed");
    f.ctx.uc_stack.ss_sp = stack;
    f.ctx.uc_stack.ss_size = STACK_BYTES;
    f.ctx.uc_link = &b->sched;
    makecontext(&f.ctx, fiber_entry, 0);
#endif
}

void yield_as(fiber_state s)
{
    block_run *b = cur_block;
    fiber &me = b->f[b->cur];
    me.state = s;
    to_scheduler(b, me);
}

/* Release the warps whose live lanes all wait at a warp barrier, then the
 * block if all its live threads wait at the block barrier. Returns whether
 * any thread can run; false with live threads left is a deadlock. */
bool release_barriers(block_run *b, unsigned *live_out)
{
    unsigned n = (unsigned)b->f.size(), live = 0, at_block = 0;
    bool runnable = false;
    for (unsigned w0 = 0; w0 < n; w0 += 32) {
        unsigned end = w0 + 32 < n ? w0 + 32 : n, live_w = 0, at_w = 0;
        for (unsigned i = w0; i < end; i++) {
            if (b->f[i].state == F_DONE) continue;
            live_w++;
            at_w += b->f[i].state == F_AT_WARP;
            at_block += b->f[i].state == F_AT_BLOCK;
            runnable |= b->f[i].state == F_RUN;
        }
        live += live_w;
        if (live_w > 0 && at_w == live_w) {
            for (unsigned i = w0; i < end; i++)
                if (b->f[i].state == F_AT_WARP) b->f[i].state = F_RUN;
            runnable = true;
        }
    }
    if (live > 0 && at_block == live) {
        for (auto &f : b->f)
            if (f.state == F_AT_BLOCK) f.state = F_RUN;
        runnable = true;
    }
    *live_out = live;
    return runnable;
}

void run_block(block_run *b, unsigned n_threads, dim3 block)
{
    b->f.resize(n_threads);
    b->exch.assign(2 * (size_t)n_threads, 0);
    b->parity.assign(n_threads, 0);
    for (unsigned i = 0; i < n_threads; i++) {
        fiber &f = b->f[i];
        f.t.tid = {i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
        f.t.flat = i;
        f.t.lane = i % 32;
        f.t.warp = i / 32;
        f.state = F_RUN;
        fiber_start(f, i, b);
    }
    for (;;) {
        for (unsigned i = 0; i < n_threads; i++) {
            if (b->f[i].state != F_RUN) continue;
            b->cur = i;
            cuemu_cur_thread = &b->f[i].t;
            to_fiber(b, b->f[i]);
        }
        unsigned live;
        bool runnable = release_barriers(b, &live);
        if (live == 0) break;
        if (!runnable)
            fail("deadlock: threads wait at different barriers (a __syncthreads or warp "
                 "operation in divergent code)");
    }
}

} // namespace

void cuemu_block_barrier(void)
{
    if (direct_mode) fail("__syncthreads in a kernel launched with CU_LAUNCH_NOSYNC");
    yield_as(F_AT_BLOCK);
}

void cuemu_warp_barrier(void)
{
    if (direct_mode) fail("a warp operation in a kernel launched with CU_LAUNCH_NOSYNC");
    yield_as(F_AT_WARP);
}

/* Posts v in this lane's slot of the current half and waits for the warp;
 * returns the half's base (its slot 0). */
static const uint64_t *warp_post(block_run *b, uint64_t v)
{
    unsigned me = b->cur, n = (unsigned)b->f.size();
    uint64_t *half = b->exch.data() + (size_t)b->parity[me] * n;
    b->parity[me] ^= 1;
    half[me] = v;
    cuemu_warp_barrier();
    return half;
}

uint64_t cuemu_warp_exchange(uint64_t v, int src_lane)
{
    block_run *b = cur_block;
    unsigned me = b->cur, src = (me & ~31u) + (unsigned)src_lane;
    const uint64_t *half = warp_post(b, v);
    return src < b->f.size() ? half[src] : v;
}

void cuemu_warp_allgather(uint64_t v, uint64_t out[32])
{
    block_run *b = cur_block;
    unsigned me = b->cur, base = me & ~31u;
    const uint64_t *half = warp_post(b, v);
    for (unsigned l = 0; l < 32; l++) out[l] = base + l < b->f.size() ? half[base + l] : v;
}

unsigned cuemu_ballot(int pred)
{
    block_run *b = cur_block;
    unsigned me = b->cur, base = me & ~31u;
    const uint64_t *half = warp_post(b, pred ? 1 : 0);
    unsigned mask = 0;
    for (unsigned l = 0; l < 32 && base + l < b->f.size(); l++)
        if (b->f[base + l].state != F_DONE && half[base + l]) mask |= 1u << l;
    return mask;
}

/* The threads of one block of a barrier-free kernel, as plain calls. */
static void run_block_direct(const std::function<void()> &body, unsigned n_threads, dim3 block)
{
    cuemu_thread t;
    cuemu_thread *saved = cuemu_cur_thread;
    cuemu_cur_thread = &t;
    direct_mode = true;
    for (unsigned i = 0; i < n_threads; i++) {
        t.tid = {i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
        t.flat = i;
        t.lane = i % 32;
        t.warp = i / 32;
        body();
    }
    direct_mode = false;
    cuemu_cur_thread = saved;
}

/* Checks the launch as a GPU would, then runs the blocks in turn, each on
 * fibers or (direct: a kernel without barriers) as plain calls. */
static void launch(dim3 grid, dim3 block, size_t dyn_smem, const std::function<void()> &body,
                   bool direct)
{
    unsigned n_threads = block.x * block.y * block.z;
    cuemu_grid g;
    g.grid = grid;
    g.block = block;
    g.dyn_smem = nullptr;
    cuemu_grid *saved_grid = cuemu_cur_grid;
    cuemu_cur_grid = &g;
    if (n_threads == 0 || n_threads > MAX_THREADS) fail("launch with 0 or more than 1024 threads");
    if (dyn_smem > MAX_DYN_SMEM) fail("launch with more dynamic shared memory than a GPU has");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
        fail("launch with an empty or oversized grid");
    std::vector<uint64_t> smem((dyn_smem + 7) / 8 + 1);
    block_run b;
    b.body = &body;
    block_run *saved_block = cur_block;
    cur_block = &b;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                /* shared memory starts as garbage on a GPU: poison it (NaN) */
                memset(smem.data(), 0xff, smem.size() * 8);
                g.dyn_smem = smem.data();
                g.bid = {x, y, z};
                if (direct) run_block_direct(body, n_threads, block);
                else run_block(&b, n_threads, block);
            }
    cur_block = saved_block;
    cuemu_cur_grid = saved_grid;
}

void cuemu_launch(dim3 grid, dim3 block, size_t dyn_smem, void *stream,
                  const std::function<void()> &body)
{
    (void)stream;
    launch(grid, block, dyn_smem, body, false);
}

/* A kernel without barriers or warp operations: every thread runs to its
 * end in turn, as plain calls (no fibers). */
void cuemu_launch_nosync(dim3 grid, dim3 block, size_t dyn_smem, void *stream,
                         const std::function<void()> &body)
{
    (void)stream;
    launch(grid, block, dyn_smem, body, true);
}
