// row_linear: one Linear layer of the INT8 ResMLP applied to a stream of
// rows (docs/METHOD.md section 10):
//
//   y[t, o] = act(clip8(rshift(sum_i x[t, i] * W[o, i], s[o]) + b[o]))
//
// with act the identity (ACT = 0), relu8 (ACT = 1) or the 8-bit LERP of
// per-output tables (ACT = 2, lerp8 through lerp_lane: the LERP-PSA
// sublayer that follows the first Linear of the channel MLP).
//
// Dataflow. The input is a stream of beats of LI codes, row by row (I / LI
// beats per row, element i of a row in byte i mod LI of beat i / LI). A
// collector shifts one row in; when it is complete it is handed to the
// compute register in one clock, and the collector takes the next row at
// once (double-buffered row). The compute side issues one output group
// (LO outputs) every FOLD clocks: it reads the LO weight rows of the group
// (linear_rom), and for each of the LO lanes a dot_tree of I / FOLD
// registered multipliers and a balanced, pipelined adder tree forms the dot
// product of one I / FOLD slice of the row per clock (FOLD > 1: the slices
// are summed in an accumulator), then requant shifts, adds the bias and
// clips. Output beats carry LO codes, row by row (O / LO beats per row).
// Back-pressure: a credit_fifo at the end; an output group is issued only
// when it holds a free slot, so the pipeline itself never stalls.
//
// Pipeline from issue to the FIFO, in clocks: 1 (ROM) + [1 slice select] +
// dot_tree (1 + ceil(log2(I / FOLD) / LPS)) + [1 accumulate] + 3 (requant)
// + [4 lerp_lane]; the bracketed parts only when FOLD > 1 or ACT = 2.
//
// End of image: in_last marks the last beat of an image (ROWS rows). The
// stage counts rows itself and raises err (sticky) when in_last disagrees;
// out_last marks the last beat of an image on the output.
//
// Parameter files (see linear_rom.v and fpga/README.md):
//   <NAME>.W.hex, <NAME>.b.hex, <NAME>.s.hex  (LO > 1: the .x<LO>.hex files)
//   <LUT_NAME>.hex (ACT = 2)  O * (2^M + 1) table entries, output-major
//
// Parameters
//   I         inputs per row (dot-product width), >= 2, a multiple of LI and FOLD
//   O         outputs per row, >= 2, a multiple of LO
//   LI        codes per input beat, >= 1
//   LO        codes per output beat (output lanes, each with its own multipliers), >= 1
//   FOLD      clocks per output group, >= 1: each lane has I / FOLD multipliers
//   ROWS      rows per image, >= 1 (for the end-of-image check)
//   ACT       0: none, 1: relu8, 2: LERP tables on the outputs
//   M         table address bits for ACT = 2 (1..7)
//   LPS       adder levels per pipeline stage of the dot products, >= 1
//   NAME      tensor name, e.g. "blocks.0.mlp.lin1"
//   LUT_NAME  table tensor name for ACT = 2, e.g. "blocks.0.mlp.lut2"
//   HEXDIR    hex folder when no +hexdir= plusarg is given (synthesis)
//   FAW       log2 of the output FIFO depth, at least (raised to cover the pipeline)
//
// Ports (valid/ready streams; a beat moves on a rising edge where valid and
// ready are both high)
//   clk, rst   clock and synchronous active-high reset
//   in_valid, in_ready, in_data, in_last       input beats (LI codes), row by row
//   out_valid, out_ready, out_data, out_last   output beats (LO codes), row by row
//   err        sticky: in_last disagreed with the row count, or the FIFO overflowed

`default_nettype none

module row_linear #(
    parameter integer I        = 96,
    parameter integer O        = 96,
    parameter integer LI       = 1,
    parameter integer LO       = 1,
    parameter integer FOLD     = 1,
    parameter integer ROWS     = 64,
    parameter integer ACT      = 0,
    parameter integer M        = 6,
    parameter integer LPS      = 2,
    parameter         NAME     = "embed",
    parameter         LUT_NAME = "lut",
    parameter         HEXDIR   = ".",
    parameter integer FAW      = 4
) (
    input  wire            clk,
    input  wire            rst,
    input  wire            in_valid,
    output wire            in_ready,
    input  wire [LI*8-1:0] in_data,
    input  wire            in_last,
    output wire            out_valid,
    input  wire            out_ready,
    output wire [LO*8-1:0] out_data,
    output wire            out_last,
    output wire            err
);
    localparam integer NB   = I / LI;                   // input beats per row
    localparam integer NG   = O / LO;                   // output groups per row
    localparam integer NPM  = I / FOLD;                 // multipliers per lane
    localparam integer GW   = (NG > 1) ? $clog2(NG) : 1;
    localparam integer FW   = (FOLD > 1) ? $clog2(FOLD) : 1;
    localparam integer RW   = (ROWS > 1) ? $clog2(ROWS) : 1;
    localparam integer CNTW = $clog2(NB + 1);
    localparam integer SUMW = 16 + ((NPM > 1) ? $clog2(NPM) : 0);   // one slice's sum
    localparam integer ACCW = 17 + $clog2(I);                       // |sum| <= I * 128 * 128
    localparam integer DT   = 1 + (((NPM > 1) ? $clog2(NPM) : 0) + LPS - 1) / LPS;
    localparam integer LAT  = 1 + (FOLD > 1 ? 2 : 0) + DT + 3 + (ACT == 2 ? 4 : 0);
    localparam integer NEED = $clog2(LAT + 4);
    localparam integer AWF  = (FAW > NEED) ? FAW : NEED;

`ifndef SYNTHESIS
    initial begin
        if (I < 2 || O < 2 || LI < 1 || LO < 1 || FOLD < 1 || ROWS < 1 || ACT < 0 || ACT > 2
            || I % LI != 0 || I % FOLD != 0 || O % LO != 0) begin
            $display("row_linear %0s: need I, O >= 2, I a multiple of LI and FOLD, O of LO, ACT in 0..2",
                     NAME);
            $finish;
        end
    end
`endif

    // ---- collector: one row shifted in, element 0 ends at the bottom ----
    reg [I*8-1:0]  col;
    reg [CNTW-1:0] col_cnt;
    reg [RW-1:0]   rcnt;             // row of the image being collected
    reg            col_last;         // the collected row is the image's last
    wire           col_full = (col_cnt == NB[CNTW-1:0]);

    // ---- compute register and issue counters ----
    reg [I*8-1:0]  cur;
    reg            cur_valid, cur_last;
    reg [GW-1:0]   g;                // output group
    reg [FW-1:0]   f;                // slice of the row (FOLD > 1)
    wire           can_claim;
    wire           f_last = (FOLD == 1) || (f == FOLD[FW-1:0] - 1'b1);
    wire           g_last = (g == NG[GW-1:0] - 1'b1);
    wire           issue  = cur_valid && (f != {FW{1'b0}} || can_claim);
    wire           claim  = issue && (f == {FW{1'b0}});
    wire           done   = issue && f_last && g_last;
    wire           xfer   = col_full && (!cur_valid || done);
    wire           take   = in_valid && in_ready;
    assign in_ready = !col_full || xfer;

    wire [I*8-1:0] col_next;
    generate
        if (NB == 1) begin : g_one_beat
            assign col_next = in_data;
        end else begin : g_beats
            assign col_next = {in_data, col[I*8-1:LI*8]};
        end
    endgenerate

    wire row_end = (col_cnt == NB[CNTW-1:0] - 1'b1);
    wire img_end = row_end && (rcnt == ROWS[RW-1:0] - 1'b1);
    reg  last_err;

    always @(posedge clk) begin
        if (take) col <= col_next;
        if (take && row_end) col_last <= img_end;
        if (xfer) begin
            cur      <= col;
            cur_last <= col_last;
        end
        if (rst) begin
            col_cnt   <= {CNTW{1'b0}};
            rcnt      <= {RW{1'b0}};
            cur_valid <= 1'b0;
            g         <= {GW{1'b0}};
            f         <= {FW{1'b0}};
            last_err  <= 1'b0;
        end else begin
            col_cnt   <= (xfer ? {CNTW{1'b0}} : col_cnt) + {{(CNTW-1){1'b0}}, take};
            if (take && row_end) rcnt <= img_end ? {RW{1'b0}} : rcnt + 1'b1;
            cur_valid <= xfer ? 1'b1 : (done ? 1'b0 : cur_valid);
            if (issue) begin
                f <= f_last ? {FW{1'b0}} : f + 1'b1;
                if (f_last) g <= g_last ? {GW{1'b0}} : g + 1'b1;
            end
            if (take && (in_last != img_end)) last_err <= 1'b1;
        end
    end
`ifndef SYNTHESIS
    always @(posedge clk)
        if (!rst && take && (in_last != img_end) && !last_err)
            $display("ERROR %m: end-of-image marker %0d at row %0d beat %0d of %0d x %0d",
                     in_last, rcnt, col_cnt, ROWS, NB);
`endif

    // ---- stage 1: ROM reads (registered), row snapshot ----
    wire [LO*I*8-1:0] w1;
    wire [LO*8-1:0]   b1;
    wire [LO*5-1:0]   s1;
    linear_rom #(.I(I), .O(O), .LO(LO), .NAME(NAME), .HEXDIR(HEXDIR)) rom (
        .clk(clk), .addr(g), .w(w1), .b(b1), .s(s1));
    reg [I*8-1:0] x1;
    reg [FW-1:0]  f1;
    reg [GW-1:0]  g1;
    reg           v1, first1, lastc1, olast1;
    always @(posedge clk) begin
        x1     <= cur;
        f1     <= f;
        g1     <= g;
        first1 <= (f == {FW{1'b0}});
        lastc1 <= f_last;
        olast1 <= cur_last && g_last && f_last;
        v1     <= rst ? 1'b0 : issue;
    end

    // ---- optional stage: the slice f of the row and of the weight rows ----
    wire [NPM*8-1:0]    xs;
    wire [LO*NPM*8-1:0] ws;
    wire [LO*8-1:0]     bs;
    wire [LO*5-1:0]     ss;
    wire [GW-1:0]       gs;
    wire                vs, firsts, lastcs, olasts;
    genvar k;
    generate
        if (FOLD > 1) begin : g_slice
            reg [NPM*8-1:0]    xr;
            reg [LO*NPM*8-1:0] wr;
            reg [LO*8-1:0]     br;
            reg [LO*5-1:0]     sr;
            reg [GW-1:0]       gr;
            reg                vr, fr, lr, or_;
            for (k = 0; k < LO; k = k + 1) begin : lane
                always @(posedge clk) wr[k*NPM*8 +: NPM*8] <= w1[k*I*8 + f1*NPM*8 +: NPM*8];
            end
            always @(posedge clk) begin
                xr  <= x1[f1*NPM*8 +: NPM*8];
                br  <= b1;
                sr  <= s1;
                gr  <= g1;
                fr  <= first1;
                lr  <= lastc1;
                or_ <= olast1;
                vr  <= rst ? 1'b0 : v1;
            end
            assign {xs, ws, bs, ss, gs, vs, firsts, lastcs, olasts} = {xr, wr, br, sr, gr, vr, fr, lr, or_};
        end else begin : g_whole
            assign {xs, ws, bs, ss, gs, vs, firsts, lastcs, olasts} = {x1, w1, b1, s1, g1, v1, first1, lastc1, olast1};
            wire unused_ok = &{1'b0, f1};
        end
    endgenerate

    // ---- per output lane: dot product, [accumulate], requant, [LERP] ----
    localparam integer SIDE = GW + 3;                 // group, first, last slice, image last
    wire [LO-1:0]   fin_valid_l;
    wire [LO*8-1:0] fin_data;
    wire [LO-1:0]   fin_last_l;
    generate
        for (k = 0; k < LO; k = k + 1) begin : lane
            wire                    tv;
            wire signed [SUMW-1:0]  tsum;
            wire [SIDE+13-1:0]      tside;
            dot_tree #(.N(NPM), .LPS(LPS), .SW(SIDE + 13)) dot (
                .clk(clk), .rst(rst), .in_valid(vs), .in_a(xs), .in_b(ws[k*NPM*8 +: NPM*8]),
                .in_side({bs[k*8 +: 8], ss[k*5 +: 5], gs, firsts, lastcs, olasts}),
                .out_valid(tv), .out_sum(tsum), .out_side(tside));
            wire signed [ACCW-1:0] acc;
            wire [SIDE+13-1:0]     aside;
            wire                   av;
            if (FOLD > 1) begin : g_acc
                reg signed [ACCW-1:0] accr;
                reg [SIDE+13-1:0]     sider;
                reg                   vr;
                always @(posedge clk) begin
                    if (tv) accr <= (tside[2] ? {ACCW{1'b0}} : accr)
                                    + {{(ACCW-SUMW){tsum[SUMW-1]}}, tsum};
                    sider <= tside;
                    vr    <= rst ? 1'b0 : (tv && tside[1]);   // the last slice completes it
                end
                assign {acc, aside, av} = {accr, sider, vr};
            end else begin : g_noacc
                assign acc   = {{(ACCW-SUMW){tsum[SUMW-1]}}, tsum};
                assign aside = tside;
                assign av    = tv;
            end
            wire                rv;
            wire signed [7:0]   ry;
            wire [GW:0]         rside;                       // group, image last
            requant #(.AW(ACCW), .RELU(ACT == 1 ? 1 : 0), .SW(GW + 1)) rq (
                .clk(clk), .rst(rst), .in_valid(av), .in_acc(acc),
                .in_s(aside[SIDE+4 -: 5]), .in_b(aside[SIDE+12 -: 8]),
                .in_side({aside[SIDE-1 -: GW], aside[0]}),
                .out_valid(rv), .out_y(ry), .out_side(rside));
            wire unused_side = &{1'b0, aside[2:1]};
            if (ACT == 2) begin : g_lerp
                // feature of this lane: g * LO + k
                localparam integer OWD = $clog2(O) + 1;
                wire [OWD-1:0] feat = {{(OWD-GW){1'b0}}, rside[GW:1]} * LO[OWD-1:0] + k[OWD-1:0];
                wire [((O > 1) ? $clog2(O) : 1)-1:0] fidx = feat[((O > 1) ? $clog2(O) : 1)-1:0];
                wire unused_f = &{1'b0, feat};
                lerp_lane #(.F(O), .M(M), .FILE({LUT_NAME, ".hex"}), .HEXDIR(HEXDIR), .SW(1)) lerp (
                    .clk(clk), .rst(rst), .in_valid(rv), .in_x(ry), .in_f(fidx), .in_side(rside[0]),
                    .out_valid(fin_valid_l[k]), .out_y(fin_data[k*8 +: 8]), .out_side(fin_last_l[k]));
            end else begin : g_plain
                assign fin_valid_l[k]     = rv;
                assign fin_data[k*8 +: 8] = ry;
                assign fin_last_l[k]      = rside[0];
                wire unused_g = &{1'b0, rside[GW:1]};
            end
        end
    endgenerate

    // All lanes run in lock step: lane 0's valid and marker stand for all.
    wire unused_lanes = &{1'b0, fin_valid_l, fin_last_l};
    wire fifo_err;
    credit_fifo #(.W(LO * 8 + 1), .AW(AWF)) fifo (
        .clk(clk), .rst(rst), .claim(claim), .can_claim(can_claim),
        .in_valid(fin_valid_l[0]), .in_data({fin_last_l[0], fin_data}),
        .out_valid(out_valid), .out_ready(out_ready), .out_data({out_last, out_data}), .err(fifo_err));
    assign err = last_err | fifo_err;
endmodule

`default_nettype wire
