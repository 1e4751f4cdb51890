// Verilator testbench for stage_harness: drives its N independent streams at
// once, with random input bubbles and output stalls, and records each
// stream's outputs.
//
//   Vstage_harness +hexdir=DIR in<k>=X.bin out<k>=Y.bin n_out<k>=COUNT
//                  per<k>=IN_PER_IMAGE oper<k>=OUT_PER_IMAGE ...
//                  [bubble=PCT] [stall=PCT] [seed=S]
//
// For every stream k that has an in<k>= argument: X.bin holds its input codes
// (signed bytes, in stream order), COUNT codes are collected from its output
// and written to Y.bin. in_last is driven high on every IN_PER_IMAGE-th code;
// out_last must be high exactly on every OUT_PER_IMAGE-th output code, and
// the stream's err bit must stay low. Streams without arguments stay idle.
// Prints one line "cycles=C" and exits 0; exits 1 naming the stream when a
// stream makes no progress for 200 000 clocks, raises err or marks the end
// of an image in the wrong place.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "Vstage_harness.h"
#include "verilated.h"

static const int N = 13;
static const int WORDS = (8 * N + 31) / 32;   // 32-bit words of in_data / out_data

static const char *arg(int argc, char **argv, const std::string &key) {
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], key.c_str(), key.size()) == 0 && argv[i][key.size()] == '=')
            return argv[i] + key.size() + 1;
    return nullptr;
}

int main(int argc, char **argv) {
    std::vector<std::vector<int8_t>> in(N), out(N);
    std::vector<long> want(N, 0), per(N, 1), oper(N, 1);
    std::vector<std::string> out_path(N);
    std::vector<size_t> next(N, 0);
    std::vector<uint64_t> progress(N, 0);
    for (int k = 0; k < N; ++k) {
        const char *ip = arg(argc, argv, "in" + std::to_string(k));
        if (!ip) continue;
        const char *op = arg(argc, argv, "out" + std::to_string(k));
        const char *no = arg(argc, argv, "n_out" + std::to_string(k));
        const char *pi = arg(argc, argv, "per" + std::to_string(k));
        const char *po = arg(argc, argv, "oper" + std::to_string(k));
        if (!op || !no || !pi || !po) {
            std::fprintf(stderr, "tb_stages: stream %d needs in%d=, out%d=, n_out%d=, per%d=, oper%d=\n",
                         k, k, k, k, k, k);
            return 2;
        }
        per[k] = std::atol(pi);
        oper[k] = std::atol(po);
        std::FILE *f = std::fopen(ip, "rb");
        if (!f) {
            std::fprintf(stderr, "tb_stages: cannot read %s\n", ip);
            return 2;
        }
        int c;
        while ((c = std::fgetc(f)) != EOF) in[k].push_back((int8_t)c);
        std::fclose(f);
        out_path[k] = op;
        want[k] = std::atol(no);
    }
    const char *b = arg(argc, argv, "bubble");
    const char *s = arg(argc, argv, "stall");
    const char *sd = arg(argc, argv, "seed");
    const int bubble = b ? std::atoi(b) : 0, stall = s ? std::atoi(s) : 0;
    std::mt19937 rng(sd ? std::atoi(sd) : 1);

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto top = std::make_unique<Vstage_harness>(ctx.get());
    top->rst = 1;
    top->in_valid = 0;
    top->in_last = 0;
    top->out_ready = 0;
    for (int i = 0; i < 4; ++i) {
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
    }
    top->rst = 0;

    uint64_t cycle = 0;
    for (;;) {
        bool done = true;
        for (int k = 0; k < N; ++k) done = done && (long)out[k].size() >= want[k];
        if (done) break;
        uint32_t valid = 0, ready = 0, lastb = 0;
        uint32_t words[WORDS] = {0};
        for (int k = 0; k < N; ++k) {
            if (next[k] < in[k].size() && (bubble <= 0 || (int)(rng() % 100) >= bubble)) {
                valid |= 1u << k;
                words[(8 * k) / 32] |= (uint32_t)(uint8_t)in[k][next[k]] << ((8 * k) % 32);
                if ((long)((next[k] + 1) % per[k]) == 0) lastb |= 1u << k;
            }
            if ((long)out[k].size() < want[k] && (stall <= 0 || (int)(rng() % 100) >= stall))
                ready |= 1u << k;
        }
        top->clk = 0;
        top->in_valid = valid;
        top->in_last = lastb;
        for (int w = 0; w < WORDS; ++w) top->in_data[w] = words[w];
        top->out_ready = ready;
        top->eval();
        const uint32_t took = valid & top->in_ready;
        const uint32_t gave = ready & top->out_valid;
        const uint32_t olast = top->out_last;
        std::vector<int8_t> got(N);
        for (int k = 0; k < N; ++k)
            got[k] = (int8_t)((top->out_data[(8 * k) / 32] >> ((8 * k) % 32)) & 0xFF);
        top->clk = 1;
        top->eval();
        ++cycle;
        for (int k = 0; k < N; ++k) {
            if (top->err & (1u << k)) {
                std::fprintf(stderr, "tb_stages: stream %d raised err (end-of-image marker or FIFO "
                             "check) at clock %llu\n", k, (unsigned long long)cycle);
                return 1;
            }
            if (took & (1u << k)) { ++next[k]; progress[k] = cycle; }
            if (gave & (1u << k)) {
                out[k].push_back(got[k]);
                progress[k] = cycle;
                const bool want_last = (long)(out[k].size() % oper[k]) == 0;
                if (((olast >> k) & 1u) != (want_last ? 1u : 0u)) {
                    std::fprintf(stderr, "tb_stages: stream %d: out_last %u on output %zu\n", k,
                                 (olast >> k) & 1u, out[k].size() - 1);
                    return 1;
                }
            }
            if ((long)out[k].size() < want[k] && cycle - progress[k] > 200000ULL) {
                std::fprintf(stderr, "tb_stages: stream %d stuck after %zu inputs and %zu outputs\n",
                             k, next[k], out[k].size());
                return 1;
            }
        }
    }
    top->final();
    for (int k = 0; k < N; ++k) {
        if (out_path[k].empty()) continue;
        std::FILE *f = std::fopen(out_path[k].c_str(), "wb");
        if (!f || std::fwrite(out[k].data(), 1, out[k].size(), f) != out[k].size()) {
            std::fprintf(stderr, "tb_stages: cannot write %s\n", out_path[k].c_str());
            return 2;
        }
        std::fclose(f);
    }
    std::printf("cycles=%llu\n", (unsigned long long)cycle);
    return 0;
}
