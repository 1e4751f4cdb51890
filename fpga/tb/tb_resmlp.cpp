// Verilator testbench for resmlp_axis (resmlp_top with AXI4-Stream ports): streams
// images back to back through the pipeline, collects the logits and the timing of
// every image, and checks the stream protocol on the way.
//
//   Vresmlp_axis +hexdir=DIR in=X.bin out=Y.bin timing=T.txt images=N
//               in_per_image=T*P out_per_image=K [in_stall=P] [out_stall=P]
//               [hold=L] [drop=I] [seed=S] [+verilator+rand+reset+2 +verilator+seed+S]
//
// +hexdir=DIR   folder of the parameter hex files (read by the RTL's $readmemh)
// X.bin         N * in_per_image signed bytes, image after image, token rows in order
// Y.bin         written: N * out_per_image signed bytes (the logits)
// T.txt         written: one line per image, "first_in last_in last_out" in clock
//               cycles (first_in: the clock its first code was taken; last_out: the
//               clock its last logit was taken)
// in_stall=P    leave a clock without a code with probability P (0 <= P < 1, seeded); a
//               code once offered (TVALID) stays offered until TREADY takes it
// out_stall=P   hold TREADY of the logits low on each clock with probability P
// hold=L        also hold out_ready low in every second window of L clocks (clocks L..2L-1,
//               3L..4L-1, ...): long stretches, so that back-pressure reaches the input
// drop=I        leave out input code number I (0-based) while keeping every image's
//               end-of-image marker on its last code: a miscounted stream
// +verilator+rand+reset+2  random power-up values of every register and memory
//
// TLAST is driven high on the last code of every image. Checked on every clock:
// the err port must stay 0 (each bit is a stage's end-of-image or FIFO check) and
// the logits' TLAST must be high exactly on every out_per_image-th logit.
//
// Prints "image I CYCLE" as each image's last logit leaves, then one line
// "cycles=C images=N max_in_refused=R" (R: the longest run of clocks in which a code
// was offered and not taken, to show how far back-pressure reached), and exits 0. Exits 1 naming the problem when a stage
// raises err ("err stage=B"), when out_last is wrong, or when nothing moves for
// 4 000 000 clocks (the pipeline is stuck); 2 on bad arguments.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "Vresmlp_axis.h"
#include "verilated.h"

static const char *arg(int argc, char **argv, const char *key, const char *dflt) {
    const size_t n = std::strlen(key);
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
    if (!dflt) {
        std::fprintf(stderr, "tb_resmlp: missing argument %s=...\n", key);
        std::exit(2);
    }
    return dflt;
}

int main(int argc, char **argv) {
    const std::string in_path = arg(argc, argv, "in", nullptr);
    const std::string out_path = arg(argc, argv, "out", nullptr);
    const std::string timing_path = arg(argc, argv, "timing", nullptr);
    const long images = std::atol(arg(argc, argv, "images", nullptr));
    const long in_per = std::atol(arg(argc, argv, "in_per_image", nullptr));
    const long out_per = std::atol(arg(argc, argv, "out_per_image", nullptr));
    const double in_stall = std::atof(arg(argc, argv, "in_stall", "0"));
    const double out_stall = std::atof(arg(argc, argv, "out_stall", "0"));
    const long hold = std::atol(arg(argc, argv, "hold", "0"));
    const long drop = std::atol(arg(argc, argv, "drop", "-1"));
    std::mt19937 rng(std::atoi(arg(argc, argv, "seed", "1")));
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    if (images < 1 || in_per < 1 || out_per < 1 || in_stall < 0 || in_stall >= 1 ||
        out_stall < 0 || out_stall >= 1 || hold < 0) {
        std::fprintf(stderr, "tb_resmlp: need images, in_per_image, out_per_image >= 1, "
                             "stalls in [0, 1), hold >= 0\n");
        return 2;
    }

    std::vector<int8_t> raw(images * in_per);
    std::FILE *f = std::fopen(in_path.c_str(), "rb");
    if (!f || std::fread(raw.data(), 1, raw.size(), f) != raw.size()) {
        std::fprintf(stderr, "tb_resmlp: cannot read %ld bytes from %s\n", (long)raw.size(), in_path.c_str());
        return 2;
    }
    std::fclose(f);
    // The input stream: codes with their end-of-image marker and image index.
    std::vector<int8_t> in;
    std::vector<uint8_t> last;
    std::vector<long> img_of;
    for (size_t n = 0; n < raw.size(); ++n) {
        if ((long)n == drop) continue;
        in.push_back(raw[n]);
        last.push_back((long)(n % in_per) == in_per - 1);
        img_of.push_back((long)(n / in_per));
    }

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);  // +hexdir=, +verilator+rand+reset+ reach the model
    auto top = std::make_unique<Vresmlp_axis>(ctx.get());

    std::vector<int8_t> out;
    out.reserve(images * out_per);
    std::vector<uint64_t> first_in(images, 0), last_in(images, 0), last_out(images, 0);
    uint64_t cycle = 0, last_progress = 0;
    size_t next = 0;
    long prev_img = -1;

    top->clk = 0;
    top->rst = 1;
    top->s_axis_tvalid = 0;
    top->s_axis_tdata = 0;
    top->s_axis_tlast = 0;
    top->m_axis_tready = 0;
    for (int i = 0; i < 4; ++i) {
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
    }
    top->rst = 0;

    bool held = false, offering = false;
    uint64_t refused = 0, max_refused = 0;
    while (out.size() < (size_t)(images * out_per)) {
        if (hold > 0) held = (cycle / hold) % 2 == 1;
        // AXI4-Stream: a code once offered stays offered until it is taken
        const bool offer = next < in.size() && ((in_stall <= 0 || uni(rng) >= in_stall) || offering);
        const bool ready = !held && (out_stall <= 0 || uni(rng) >= out_stall);
        top->clk = 0;
        top->s_axis_tvalid = offer;
        top->s_axis_tdata = offer ? (uint8_t)in[next] : 0;
        top->s_axis_tlast = offer ? last[next] : 0;
        top->m_axis_tready = ready;
        top->eval();
        const bool took = offer && top->s_axis_tready;
        offering = offer && !took;
        if (offer && !took) max_refused = std::max(max_refused, ++refused);
        else if (took) refused = 0;
        const bool gave = ready && top->m_axis_tvalid;
        const int8_t logit = (int8_t)top->m_axis_tdata;
        const bool logit_last = top->m_axis_tlast;
        top->clk = 1;
        top->eval();
        ++cycle;
        if (top->err) {
            uint64_t e = top->err;
            int b = 0;
            while (!(e & 1)) { e >>= 1; ++b; }
            std::printf("cycles=%llu err stage=%d\n", (unsigned long long)cycle, b);
            std::fprintf(stderr, "tb_resmlp: stage %d raised err at clock %llu (end-of-image "
                         "marker or FIFO check)\n", b, (unsigned long long)cycle);
            return 1;
        }
        if (took) {
            const long img = img_of[next];
            if (img != prev_img) first_in[img] = cycle;
            prev_img = img;
            if (last[next]) last_in[img] = cycle;
            ++next;
            last_progress = cycle;
        }
        if (gave) {
            out.push_back(logit);
            const bool want_last = out.size() % out_per == 0;
            if (logit_last != want_last) {
                std::fprintf(stderr, "tb_resmlp: out_last is %d on logit %zu (expected %d)\n",
                             (int)logit_last, out.size() - 1, (int)want_last);
                return 1;
            }
            if (want_last) {
                last_out[out.size() / out_per - 1] = cycle;
                std::printf("image %zu %llu\n", out.size() / out_per - 1, (unsigned long long)cycle);
                std::fflush(stdout);
            }
            last_progress = cycle;
        }
        if (cycle - last_progress > 4000000ULL) {
            std::fprintf(stderr, "tb_resmlp: no progress for 4000000 clocks after %zu inputs and "
                         "%zu outputs: the pipeline is stuck\n", next, out.size());
            return 1;
        }
    }
    top->final();

    f = std::fopen(out_path.c_str(), "wb");
    if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size()) {
        std::fprintf(stderr, "tb_resmlp: cannot write %s\n", out_path.c_str());
        return 2;
    }
    std::fclose(f);
    f = std::fopen(timing_path.c_str(), "w");
    if (!f) {
        std::fprintf(stderr, "tb_resmlp: cannot write %s\n", timing_path.c_str());
        return 2;
    }
    for (long i = 0; i < images; ++i)
        std::fprintf(f, "%llu %llu %llu\n", (unsigned long long)first_in[i],
                     (unsigned long long)last_in[i], (unsigned long long)last_out[i]);
    std::fclose(f);
    std::printf("cycles=%llu images=%ld max_in_refused=%llu\n", (unsigned long long)cycle, images,
                (unsigned long long)max_refused);
    return 0;
}
