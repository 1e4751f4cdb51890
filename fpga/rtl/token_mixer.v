// token_mixer: the token-mixing half of one ResMLP block in integers
// (docs/METHOD.md section 10), on a stream of images of T tokens x C
// channels, token rows in order (element (t, c) at position t * C + c):
//
//   r = affine(x, res);  a = affine(x, aff1)
//   u = linear(a^T, lin)^T        W (T, T): output token x input token
//   y = add8(affine(u, aff2), r)
//
// Two phases, each image in a ping-pong pair of buffers, so that two
// consecutive images are in flight at once:
//   fill     takes one element per clock, computes both affines (affine_unit,
//            pipelined) and writes a into the transpose buffer A (one word
//            per channel holding the whole token column) and r into the
//            residual buffer R;
//   compute  once an image is complete in A and R, produces the output in
//            stream order, one element per clock: for each output token o
//            (outer) and channel c (inner) it reads column c of A and row o
//            of the weight ROM, forms the dot product over the T input
//            tokens (dot_tree: registered multipliers, balanced pipelined
//            adder tree), shift, bias, clip (requant), the aff2 affine and
//            the residual add, and writes the element into a credit_fifo.
// The output leaves in token-row order as it is computed: no output buffer.
// Each phase takes T * C clocks per image, so the block sustains one image
// per T * C clocks; an element's latency is its image's fill plus the
// compute pipeline (2 + dot_tree + 3 + 4 clocks).
//
// Memories: A (2C words of T bytes) and R (2TC bytes) are block RAMs
// (ram_style "block"): A is written one byte lane per clock through the
// byte-write enables of a simple dual-port block RAM, and both are read
// synchronously into an output register (the block RAM's own), so the
// compute reads take two clocks; the weight ROM and aff2 ROM addresses are
// delayed one clock to match.
//
// End of image: in_last marks the last element of an image; the fill counts
// elements itself and raises err (sticky) when in_last disagrees; out_last
// marks the last element of each output image.
//
// Parameter files (see fpga/README.md): <NAME>.res.{w,b,s}.hex,
// <NAME>.aff1.{w,b,s}.hex, <NAME>.aff2.{w,b,s}.hex (C lines each);
// <NAME>.lin.W.hex (T lines, line o = W[o, :] as T bytes, W[o, T-1]
// first), <NAME>.lin.b.hex and <NAME>.lin.s.hex (T lines each).
//
// Parameters
//   T       tokens per image, >= 2
//   C       channels, >= 2
//   LPS     adder levels per pipeline stage of the dot products, >= 1
//   NAME    tensor-name prefix, e.g. "blocks.0.tm"
//   HEXDIR  hex folder when no +hexdir= plusarg is given (synthesis)
//   FAW     log2 of the output FIFO depth, at least (raised to cover the pipeline)
//
// Ports (valid/ready streams of signed 8-bit codes, token rows in order)
//   clk, rst   clock and synchronous active-high reset
//   in_valid, in_ready, in_data, in_last       input elements
//   out_valid, out_ready, out_data, out_last   output elements
//   err        sticky: in_last disagreed with the element count, or the FIFO overflowed

`default_nettype none

module token_mixer #(
    parameter integer T      = 64,
    parameter integer C      = 96,
    parameter integer LPS    = 2,
    parameter         NAME   = "blocks.0.tm",
    parameter         HEXDIR = ".",
    parameter integer FAW    = 3
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              in_valid,
    output wire              in_ready,
    input  wire signed [7:0] in_data,
    input  wire              in_last,
    output wire              out_valid,
    input  wire              out_ready,
    output wire signed [7:0] out_data,
    output wire              out_last,
    output wire              err
);
    localparam integer TW   = $clog2(T);
    localparam integer CW   = $clog2(C);
    localparam integer TC   = T * C;
    localparam integer NW   = $clog2(2 * TC);      // address of a buffer pair
    localparam integer AAW  = $clog2(2 * C);       // word address of A
    localparam integer ACCW = 16 + TW;             // a dot product of T products
    localparam integer DT   = 1 + (TW + LPS - 1) / LPS;
    localparam integer LAT  = 2 + DT + 3 + 4;      // issue to FIFO
    localparam integer NEED = $clog2(LAT + 4);
    localparam integer AWF  = (FAW > NEED) ? FAW : NEED;

    // Buffers (two images each): A transposed (a word per channel: token t
    // in byte t), R in token-row order (address t * C + c).
    (* ram_style = "block" *) reg [T*8-1:0]    amem [0:2*C-1];
    (* ram_style = "block" *) reg signed [7:0] rmem [0:2*TC-1];
    reg [1:0]        full_a;   // image complete in A/R half k

    // ================= fill =================
    reg [CW-1:0] fc;
    reg [TW-1:0] ft;
    reg [NW-1:0] fn;
    reg          fb, last_err;
    assign in_ready = !full_a[fb];
    wire take  = in_valid && in_ready;
    wire flast = (fc == C[CW-1:0] - 1'b1) && (ft == T[TW-1:0] - 1'b1);
    always @(posedge clk) begin
        if (rst) begin
            fc       <= {CW{1'b0}};
            ft       <= {TW{1'b0}};
            fn       <= {NW{1'b0}};
            fb       <= 1'b0;
            last_err <= 1'b0;
        end else if (take) begin
            fc <= (fc == C[CW-1:0] - 1'b1) ? {CW{1'b0}} : fc + 1'b1;
            if (fc == C[CW-1:0] - 1'b1) ft <= ft + 1'b1;   // wraps at T = 2^TW or by flast
            if (flast) ft <= {TW{1'b0}};
            fn <= flast ? {NW{1'b0}} : fn + 1'b1;
            if (flast) fb <= ~fb;
            if (in_last != flast) last_err <= 1'b1;
        end
    end
`ifndef SYNTHESIS
    always @(posedge clk)
        if (!rst && take && (in_last != flast) && !last_err)
            $display("ERROR %m: end-of-image marker %0d at token %0d channel %0d of %0d x %0d",
                     in_last, ft, fc, T, C);
`endif

    wire signed [7:0] res_w, res_b, aff1_w, aff1_b;
    wire [4:0]        res_s, aff1_s;
    affine_rom #(.C(C), .NAME({NAME, ".res"}), .HEXDIR(HEXDIR)) rom_res (
        .clk(clk), .addr(fc), .w(res_w), .b(res_b), .s(res_s));
    affine_rom #(.C(C), .NAME({NAME, ".aff1"}), .HEXDIR(HEXDIR)) rom_aff1 (
        .clk(clk), .addr(fc), .w(aff1_w), .b(aff1_b), .s(aff1_s));

    localparam integer FSW = CW + TW + NW + 2;     // channel, token, position, half, image end
    reg signed [7:0] fx1;
    reg [FSW-1:0]    fside1;
    reg              fv1;
    always @(posedge clk) begin
        fx1    <= in_data;
        fside1 <= {fc, ft, fn, fb, flast};
        fv1    <= rst ? 1'b0 : take;
    end
    wire              fv5, fv5_a;
    wire signed [7:0] r_val, a_val;
    wire [FSW-1:0]    fside5;
    wire              unused_aside;
    affine_unit #(.SW(FSW)) aff_res (
        .clk(clk), .rst(rst), .in_valid(fv1), .in_x(fx1), .in_w(res_w), .in_b(res_b), .in_s(res_s),
        .in_side(fside1), .out_valid(fv5), .out_y(r_val), .out_side(fside5));
    affine_unit #(.SW(1)) aff_a1 (
        .clk(clk), .rst(rst), .in_valid(fv1), .in_x(fx1), .in_w(aff1_w), .in_b(aff1_b), .in_s(aff1_s),
        .in_side(1'b0), .out_valid(fv5_a), .out_y(a_val), .out_side(unused_aside));
    wire [CW-1:0]  fc5 = fside5[FSW-1 -: CW];
    wire [TW-1:0]  ft5 = fside5[NW+TW+1 -: TW];
    wire [NW-1:0]  fn5 = fside5[NW+1 -: NW];
    wire           fb5 = fside5[1];
    wire           flast5 = fside5[0];
    wire [NW-1:0]  r_waddr = fn5 + (fb5 ? TC[NW-1:0] : {NW{1'b0}});
    wire [AAW-1:0] a_waddr = {{(AAW-CW){1'b0}}, fc5} + (fb5 ? C[AAW-1:0] : {AAW{1'b0}});
    // A: one byte lane per write, through byte-write enables (the block RAM template: a
    // word-wide port whose enables are one bit per byte)
    reg [T-1:0] a_be;
    integer     lane;
    always @* begin
        a_be = {T{1'b0}};
        a_be[ft5] = 1'b1;
    end
    always @(posedge clk) begin
        if (fv5) begin
            rmem[r_waddr] <= r_val;
            for (lane = 0; lane < T; lane = lane + 1)
                if (a_be[lane]) amem[a_waddr][lane*8 +: 8] <= a_val;
        end
    end
    wire unused_fill = &{1'b0, fv5_a, unused_aside};

    // ================= compute (stream order) =================
    reg          cb;
    reg [CW-1:0] cc;
    reg [TW-1:0] co;
    reg [NW-1:0] cn;        // co * C + cc
    wire can_claim;
    wire cissue = full_a[cb] && can_claim;
    wire clast  = (cc == C[CW-1:0] - 1'b1) && (co == T[TW-1:0] - 1'b1);
    wire clastc = (cc == C[CW-1:0] - 1'b1);
    always @(posedge clk) begin
        if (rst) begin
            cb <= 1'b0;
            cc <= {CW{1'b0}};
            co <= {TW{1'b0}};
            cn <= {NW{1'b0}};
        end else if (cissue) begin
            cc <= clastc ? {CW{1'b0}} : cc + 1'b1;
            if (clastc) co <= co + 1'b1;                  // wraps at T = 2^TW
            cn <= clast ? {NW{1'b0}} : cn + 1'b1;
            if (clast) cb <= ~cb;
        end
    end

    // stages 1-2: column of A and residual (block RAM read, then its output register),
    // weight row, per-row and per-channel parameters (ROMs read from the addresses of
    // stage 1)
    wire [AAW-1:0] a_raddr = {{(AAW-CW){1'b0}}, cc} + (cb ? C[AAW-1:0] : {AAW{1'b0}});
    wire [NW-1:0]  r_raddr = cn + (cb ? TC[NW-1:0] : {NW{1'b0}});
    reg [T*8-1:0]    ca0, ca1;
    reg signed [7:0] cr0, cr1;
    reg              cv0, cv1, clast0, clast1;
    reg [TW-1:0]     co1;
    reg [CW-1:0]     cc1;
    always @(posedge clk) begin
        ca0    <= amem[a_raddr];
        cr0    <= rmem[r_raddr];
        ca1    <= ca0;
        cr1    <= cr0;
        co1    <= co;
        cc1    <= cc;
        clast0 <= clast;
        clast1 <= clast0;
        cv0    <= rst ? 1'b0 : cissue;
        cv1    <= rst ? 1'b0 : cv0;
    end
    wire [T*8-1:0]    w1;
    wire [7:0]        lb1;
    wire [4:0]        ls1;
    wire signed [7:0] a2w1, a2b1;
    wire [4:0]        a2s1;
    linear_rom #(.I(T), .O(T), .LO(1), .NAME({NAME, ".lin"}), .HEXDIR(HEXDIR)) rom_lin (
        .clk(clk), .addr(co1), .w(w1), .b(lb1), .s(ls1));
    affine_rom #(.C(C), .NAME({NAME, ".aff2"}), .HEXDIR(HEXDIR)) rom_aff2 (
        .clk(clk), .addr(cc1), .w(a2w1), .b(a2b1), .s(a2s1));

    // dot product over the T input tokens
    localparam integer CSW = 8 + 5 + 8 + 8 + 5 + 8 + 1;   // lin b, s; aff2 w, b, s; r; image end
    wire                  dv;
    wire signed [ACCW-1:0] dsum;
    wire [CSW-1:0]        dside;
    dot_tree #(.N(T), .LPS(LPS), .SW(CSW)) dot (
        .clk(clk), .rst(rst), .in_valid(cv1), .in_a(w1), .in_b(ca1),
        .in_side({lb1, ls1, a2w1, a2b1, a2s1, cr1, clast1}),
        .out_valid(dv), .out_sum(dsum), .out_side(dside));

    // shift, bias, clip of the token Linear
    wire              uv;
    wire signed [7:0] u;
    wire [29:0]       uside;                               // aff2 w, b, s; r; image end
    requant #(.AW(ACCW), .RELU(0), .SW(30)) rq_lin (
        .clk(clk), .rst(rst), .in_valid(dv), .in_acc(dsum), .in_s(dside[CSW-9 -: 5]),
        .in_b(dside[CSW-1 -: 8]), .in_side(dside[29:0]),
        .out_valid(uv), .out_y(u), .out_side(uside));

    // aff2, then the residual add
    wire              zv;
    wire signed [7:0] z;
    wire [8:0]        zside;                               // r; image end
    affine_unit #(.SW(9)) aff_a2 (
        .clk(clk), .rst(rst), .in_valid(uv), .in_x(u), .in_w(uside[29 -: 8]), .in_b(uside[21 -: 8]),
        .in_s(uside[13 -: 5]), .in_side(uside[8:0]),
        .out_valid(zv), .out_y(z), .out_side(zside));
    wire signed [7:0] zr  = zside[8:1];
    wire signed [8:0] sum = {z[7], z} + {zr[7], zr};
    wire signed [7:0] y   = (sum > 9'sd127) ? 8'sd127 : (sum < -9'sd128) ? -8'sd128 : sum[7:0];

    wire fifo_err;
    credit_fifo #(.W(9), .AW(AWF)) fifo (
        .clk(clk), .rst(rst), .claim(cissue), .can_claim(can_claim),
        .in_valid(zv), .in_data({zside[0], y}),
        .out_valid(out_valid), .out_ready(out_ready), .out_data({out_last, out_data}), .err(fifo_err));
    assign err = last_err | fifo_err;

    // ================= buffer flags =================
    always @(posedge clk) begin
        if (rst) begin
            full_a <= 2'b00;
        end else begin
            if (cissue && clast)  full_a[cb]  <= 1'b0;   // last column read this edge
            if (fv5 && flast5)    full_a[fb5] <= 1'b1;   // last element written this edge
        end
    end
endmodule

`default_nettype wire
