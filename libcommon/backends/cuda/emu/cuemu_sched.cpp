/* cuemu_sched.cpp — backends layer, test support: kernel launches of the
 * CPU emulation of CUDA (see include/cuemu.h). Blocks run one after another;
 * a block's threads are ucontext fibers switched at barriers. */
#include "cuemu.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <vector>

thread_local cuemu_thread *cuemu_cur_thread;
thread_local cuemu_grid *cuemu_cur_grid;

namespace {

enum fiber_state { F_RUN, F_AT_BLOCK, F_AT_WARP, F_DONE };

constexpr size_t STACK_BYTES = 256 * 1024;
constexpr unsigned MAX_THREADS = 1024;
constexpr size_t MAX_DYN_SMEM = 227 * 1024;   /* an H100's opt-in limit per block */

struct fiber {
    ucontext_t ctx;
    cuemu_thread t;
    fiber_state state;
};

struct block_run {
    std::vector<fiber> f;
    std::vector<uint64_t> exch;   /* [threads] warp exchange slots */
    ucontext_t sched;
    const std::function<void()> *body;
    unsigned cur;
};

thread_local block_run *cur_block;
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

void fiber_entry()
{
    block_run *b = cur_block;
    (*b->body)();
    b->f[b->cur].state = F_DONE;
    /* returning resumes uc_link: the scheduler */
}

void yield_as(fiber_state s)
{
    block_run *b = cur_block;
    fiber &me = b->f[b->cur];
    me.state = s;
    if (swapcontext(&me.ctx, &b->sched) != 0) fail("swapcontext failed");
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
    b->exch.assign(n_threads, 0);
    for (unsigned i = 0; i < n_threads; i++) {
        fiber &f = b->f[i];
        f.t.tid = {i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
        f.t.flat = i;
        f.t.lane = i % 32;
        f.t.warp = i / 32;
        f.state = F_RUN;
        if (getcontext(&f.ctx) != 0) fail("getcontext failed");
        f.ctx.uc_stack.ss_sp = stack_for(i);
        f.ctx.uc_stack.ss_size = STACK_BYTES;
        f.ctx.uc_link = &b->sched;
        makecontext(&f.ctx, fiber_entry, 0);
    }
    for (;;) {
        for (unsigned i = 0; i < n_threads; i++) {
            if (b->f[i].state != F_RUN) continue;
            b->cur = i;
            cuemu_cur_thread = &b->f[i].t;
            if (swapcontext(&b->sched, &b->f[i].ctx) != 0) fail("swapcontext failed");
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

void cuemu_block_barrier(void) { yield_as(F_AT_BLOCK); }
void cuemu_warp_barrier(void) { yield_as(F_AT_WARP); }

uint64_t cuemu_warp_exchange(uint64_t v, int src_lane)
{
    block_run *b = cur_block;
    unsigned me = b->cur, base = me & ~31u, src = base + (unsigned)src_lane;
    b->exch[me] = v;
    cuemu_warp_barrier();
    uint64_t got = src < b->f.size() ? b->exch[src] : v;
    cuemu_warp_barrier();
    return got;
}

unsigned cuemu_ballot(int pred)
{
    block_run *b = cur_block;
    unsigned me = b->cur, base = me & ~31u;
    b->exch[me] = pred ? 1 : 0;
    cuemu_warp_barrier();
    unsigned mask = 0;
    for (unsigned l = 0; l < 32 && base + l < b->f.size(); l++)
        if (b->f[base + l].state != F_DONE && b->exch[base + l]) mask |= 1u << l;
    cuemu_warp_barrier();
    return mask;
}

void cuemu_launch(dim3 grid, dim3 block, size_t dyn_smem, void *stream,
                  const std::function<void()> &body)
{
    (void)stream;
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
                run_block(&b, n_threads, block);
            }
    cur_block = saved_block;
    cuemu_cur_grid = saved_grid;
}
