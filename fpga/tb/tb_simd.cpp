// Verilator testbench for simd_top (the fixed-SIMD engine): an external memory
// model and a loop over the images, one at a time.
//
//   Vsimd_top mem=M.bin out=Y.bin timing=T.txt images=N img_base=B img_stride=S
//             wbase=WB wbeats=WN pbase=PB pbeats=PN h=H act=A k=K pbytes=PB
//             [latency=L] [out_stall=P] [seed=S] [+verilator+rand+reset+2]
//
// M.bin         the memory image (fpga/sim_fixed.py memory_image): weight stream,
//               parameter stream, the images
// Y.bin         written: N * K signed bytes, the logits of the images in order
// T.txt         written: one line per image, "start done" in clock cycles (start: the
//               clock the start pulse was taken; done: the clock its last logit was taken)
// img_base, img_stride   beat address of image 0 and the beats from one image to the next
// wbase, wbeats, pbase, pbeats   the weight and parameter streams (beats)
// h, act        the model: hidden width, 0 ReLU / 1 LERP-PSA
// k             logits per image; pbytes: bytes per beat (the RTL's PB)
// latency=L     the memory answers each request L clocks later (>= 1), in order, one
//               beat per request: L clocks of latency, PB bytes per clock of bandwidth
// out_stall=P   hold out_ready low on each clock with probability P (seeded)
//
// Prints "image I CYCLES" after each image, then "cycles=C images=N" and exits 0;
// exits 1 when the engine raises err, when out_last is misplaced, when an address
// falls outside the memory, or when an image takes more than 10 000 000 clocks.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "Vsimd_top.h"
#include "verilated.h"

static const char *arg(int argc, char **argv, const char *key, const char *dflt) {
    const size_t n = std::strlen(key);
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
    if (!dflt) {
        std::fprintf(stderr, "tb_simd: missing argument %s=...\n", key);
        std::exit(2);
    }
    return dflt;
}

// mem_rdata is a 32-bit, 64-bit or wide Verilator type depending on PB
static void put(uint32_t &d, const uint32_t *w) { d = w[0]; }
static void put(uint64_t &d, const uint32_t *w) { d = ((uint64_t)w[1] << 32) | w[0]; }
template <std::size_t N> static void put(VlWide<N> &d, const uint32_t *w) {
    for (std::size_t i = 0; i < N; ++i) d[i] = w[i];
}

struct Pending {
    uint64_t due;
    uint64_t beat;
};

int main(int argc, char **argv) {
    const std::string mem_path = arg(argc, argv, "mem", nullptr);
    const std::string out_path = arg(argc, argv, "out", nullptr);
    const std::string timing_path = arg(argc, argv, "timing", nullptr);
    const long images = std::atol(arg(argc, argv, "images", nullptr));
    const uint64_t img_base = std::strtoull(arg(argc, argv, "img_base", nullptr), nullptr, 10);
    const uint64_t img_stride = std::strtoull(arg(argc, argv, "img_stride", nullptr), nullptr, 10);
    const uint64_t wbase = std::strtoull(arg(argc, argv, "wbase", nullptr), nullptr, 10);
    const uint64_t wbeats = std::strtoull(arg(argc, argv, "wbeats", nullptr), nullptr, 10);
    const uint64_t pbase = std::strtoull(arg(argc, argv, "pbase", nullptr), nullptr, 10);
    const uint64_t pbeats = std::strtoull(arg(argc, argv, "pbeats", nullptr), nullptr, 10);
    const int h = std::atoi(arg(argc, argv, "h", nullptr));
    const int act = std::atoi(arg(argc, argv, "act", nullptr));
    const long k = std::atol(arg(argc, argv, "k", nullptr));
    const int pbytes = std::atoi(arg(argc, argv, "pbytes", nullptr));
    const long latency = std::atol(arg(argc, argv, "latency", "1"));
    const double out_stall = std::atof(arg(argc, argv, "out_stall", "0"));
    std::mt19937 rng(std::atoi(arg(argc, argv, "seed", "1")));
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    if (images < 1 || k < 1 || latency < 1 || pbytes < 1 || pbytes > 256 || out_stall < 0 ||
        out_stall >= 1) {
        std::fprintf(stderr, "tb_simd: need images, k, latency, pbytes >= 1 and out_stall in [0, 1)\n");
        return 2;
    }

    std::vector<uint8_t> mem;
    {
        std::FILE *f = std::fopen(mem_path.c_str(), "rb");
        if (!f) {
            std::fprintf(stderr, "tb_simd: cannot read %s\n", mem_path.c_str());
            return 2;
        }
        int c;
        while ((c = std::fgetc(f)) != EOF) mem.push_back((uint8_t)c);
        std::fclose(f);
    }

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto top = std::make_unique<Vsimd_top>(ctx.get());

    auto set_rdata = [&](uint64_t beat) -> bool {
        const uint64_t a = beat * (uint64_t)pbytes;
        if (a + pbytes > mem.size()) return false;
        uint32_t w[64] = {0};
        for (int b = 0; b < pbytes; ++b) w[b / 4] |= (uint32_t)mem[a + b] << (8 * (b % 4));
        put(top->mem_rdata, w);
        return true;
    };

    top->clk = 0;
    top->rst = 1;
    top->start = 0;
    top->out_ready = 0;
    top->mem_rvalid = 0;
    top->cfg_h = h;
    top->cfg_act = act;
    top->cfg_wbase = wbase;
    top->cfg_wbeats = wbeats;
    top->cfg_pbase = pbase;
    top->cfg_pbeats = pbeats;
    top->img_base = 0;
    for (int i = 0; i < 4; ++i) {
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
    }
    top->rst = 0;

    std::vector<int8_t> out;
    std::vector<uint64_t> t_start(images, 0), t_done(images, 0);
    std::deque<Pending> pending;
    uint64_t cycle = 0;
    for (long img = 0; img < images; ++img) {
        bool started = false;
        long got = 0;
        const uint64_t deadline = cycle + 10000000ULL;
        while (got < k) {
            const bool start = !started && !top->busy;
            const bool ready = out_stall <= 0 || uni(rng) >= out_stall;
            bool rvalid = false;
            if (!pending.empty() && pending.front().due <= cycle) {
                if (!set_rdata(pending.front().beat)) {
                    std::fprintf(stderr, "tb_simd: read of beat %llu outside the memory\n",
                                 (unsigned long long)pending.front().beat);
                    return 1;
                }
                pending.pop_front();
                rvalid = true;
            }
            top->clk = 0;
            top->start = start;
            top->img_base = img_base + (uint64_t)img * img_stride;
            top->out_ready = ready;
            top->mem_rvalid = rvalid;
            top->eval();
            const bool gave = ready && top->out_valid;
            const int8_t logit = (int8_t)top->out_data;
            const bool last = top->out_last;
            if (top->mem_req) pending.push_back({cycle + (uint64_t)latency, (uint64_t)top->mem_addr});
            top->clk = 1;
            top->eval();
            ++cycle;
            if (start) {
                started = true;
                t_start[img] = cycle;
            }
            if (top->err) {
                std::fprintf(stderr, "tb_simd: the engine raised err at clock %llu (image %ld)\n",
                             (unsigned long long)cycle, img);
                return 1;
            }
            if (gave) {
                out.push_back(logit);
                ++got;
                if (last != (got == k)) {
                    std::fprintf(stderr, "tb_simd: out_last %d on logit %ld of image %ld\n",
                                 (int)last, got - 1, img);
                    return 1;
                }
            }
            if (cycle > deadline) {
                std::fprintf(stderr, "tb_simd: image %ld not done after 10000000 clocks (%ld logits)\n",
                             img, got);
                return 1;
            }
        }
        t_done[img] = cycle;
        std::printf("image %ld %llu\n", img, (unsigned long long)(t_done[img] - t_start[img]));
        std::fflush(stdout);
    }
    top->final();

    std::FILE *f = std::fopen(out_path.c_str(), "wb");
    if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size()) {
        std::fprintf(stderr, "tb_simd: cannot write %s\n", out_path.c_str());
        return 2;
    }
    std::fclose(f);
    f = std::fopen(timing_path.c_str(), "w");
    if (!f) {
        std::fprintf(stderr, "tb_simd: cannot write %s\n", timing_path.c_str());
        return 2;
    }
    for (long i = 0; i < images; ++i)
        std::fprintf(f, "%llu %llu\n", (unsigned long long)t_start[i], (unsigned long long)t_done[i]);
    std::fclose(f);
    std::printf("cycles=%llu images=%ld\n", (unsigned long long)cycle, images);
    return 0;
}
