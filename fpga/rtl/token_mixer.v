// token_mixer: the token-mixing half of one ResMLP block in integers
// (docs/METHOD.md section 10), on a stream of images of T tokens x C
// channels, token rows in order (element (t, c) at position t * C + c):
//
//   r = affine(x, res);  a = affine(x, aff1)
//   u = linear(a^T, lin)^T        W (T, T): output token x input token
//   y = add8(affine(u, aff2), r)
//
// Three phases, each with its own pair of buffers (ping-pong), so that
// three consecutive images are in flight at once:
//   fill     takes one element per clock, computes both affines and writes
//            a into the transpose buffer A (one word per channel holding the
//            whole token column) and r into the residual buffer R;
//   compute  once an image is in A and R: for each channel c (outer) and
//            output token o (inner), one element per clock: reads column c
//            of A and row o of the weight ROM, the dot product over all T
//            input tokens fully unrolled, shift, bias, clip, the aff2
//            affine and the residual add, written to the output buffer B at
//            (o, c);
//   drain    once an image is in B: streams it out in token-row order,
//            one element per clock (valid/ready, through a small FIFO).
// Each phase takes T * C clocks per image; fill accepts the next image as
// soon as its buffer is free, so the block sustains one image per about
// T * C clocks.
//
// Parameter files (see fpga/README.md): <NAME>.res.{w,b,s}.hex,
// <NAME>.aff1.{w,b,s}.hex, <NAME>.aff2.{w,b,s}.hex (C lines each);
// <NAME>.lin.W.hex (T lines, line o = W[o, :] as T bytes, W[o, T-1]
// first), <NAME>.lin.b.hex and <NAME>.lin.s.hex (T lines each).
//
// Parameters
//   T       tokens per image, >= 2
//   C       channels, >= 2
//   NAME    tensor-name prefix, e.g. "blocks.0.tm"
//   HEXDIR  hex folder when no +hexdir= plusarg is given (synthesis)
//   FAW     log2 of the output FIFO depth (>= 2 keeps one element per clock)
//
// Ports (valid/ready streams of signed 8-bit codes, token rows in order)
//   clk, rst   clock and synchronous active-high reset
//   in_valid, in_ready, in_data     input elements
//   out_valid, out_ready, out_data  output elements

`default_nettype none

module token_mixer #(
    parameter integer T      = 64,
    parameter integer C      = 96,
    parameter         NAME   = "blocks.0.tm",
    parameter         HEXDIR = ".",
    parameter integer FAW    = 3
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              in_valid,
    output wire              in_ready,
    input  wire signed [7:0] in_data,
    output wire              out_valid,
    input  wire              out_ready,
    output wire signed [7:0] out_data
);
    localparam integer TW   = $clog2(T);
    localparam integer CW   = $clog2(C);
    localparam integer TC   = T * C;
    localparam integer NW   = $clog2(2 * TC);      // address of a buffer pair
    localparam integer AAW  = $clog2(2 * C);       // word address of A
    localparam integer ACCW = 17 + $clog2(T);

    // Buffers (two images each): A transposed (a word per channel: token t
    // in byte t), R and B in token-row order (address t * C + c).
    reg [T*8-1:0]    amem [0:2*C-1];
    reg signed [7:0] rmem [0:2*TC-1];
    reg signed [7:0] bmem [0:2*TC-1];
    reg [1:0]        full_a;   // image complete in A/R half k
    reg [1:0]        full_b;   // image complete in B half k

    // ================= fill =================
    reg [CW-1:0] fc;
    reg [TW-1:0] ft;
    reg [NW-1:0] fn;
    reg          fb;
    assign in_ready = !full_a[fb];
    wire take  = in_valid && in_ready;
    wire flast = (fc == C[CW-1:0] - 1'b1) && (ft == T[TW-1:0] - 1'b1);
    always @(posedge clk) begin
        if (rst) begin
            fc <= {CW{1'b0}};
            ft <= {TW{1'b0}};
            fn <= {NW{1'b0}};
            fb <= 1'b0;
        end else if (take) begin
            fc <= (fc == C[CW-1:0] - 1'b1) ? {CW{1'b0}} : fc + 1'b1;
            if (fc == C[CW-1:0] - 1'b1) ft <= ft + 1'b1;   // wraps at T = 2^TW or by flast
            if (flast) ft <= {TW{1'b0}};
            fn <= flast ? {NW{1'b0}} : fn + 1'b1;
            if (flast) fb <= ~fb;
        end
    end

    wire signed [7:0] res_w, res_b, aff1_w, aff1_b;
    wire [4:0]        res_s, aff1_s;
    hex_rom #(.WIDTH(8), .DEPTH(C), .AW(CW), .FILE({NAME, ".res.w.hex"}), .HEXDIR(HEXDIR))
        rom_res_w (.clk(clk), .addr(fc), .data(res_w));
    hex_rom #(.WIDTH(8), .DEPTH(C), .AW(CW), .FILE({NAME, ".res.b.hex"}), .HEXDIR(HEXDIR))
        rom_res_b (.clk(clk), .addr(fc), .data(res_b));
    hex_rom #(.WIDTH(5), .DEPTH(C), .AW(CW), .FILE({NAME, ".res.s.hex"}), .HEXDIR(HEXDIR))
        rom_res_s (.clk(clk), .addr(fc), .data(res_s));
    hex_rom #(.WIDTH(8), .DEPTH(C), .AW(CW), .FILE({NAME, ".aff1.w.hex"}), .HEXDIR(HEXDIR))
        rom_aff1_w (.clk(clk), .addr(fc), .data(aff1_w));
    hex_rom #(.WIDTH(8), .DEPTH(C), .AW(CW), .FILE({NAME, ".aff1.b.hex"}), .HEXDIR(HEXDIR))
        rom_aff1_b (.clk(clk), .addr(fc), .data(aff1_b));
    hex_rom #(.WIDTH(5), .DEPTH(C), .AW(CW), .FILE({NAME, ".aff1.s.hex"}), .HEXDIR(HEXDIR))
        rom_aff1_s (.clk(clk), .addr(fc), .data(aff1_s));

    reg signed [7:0] fx1;
    reg [CW-1:0]     fc1;
    reg [TW-1:0]     ft1;
    reg [NW-1:0]     fn1;
    reg              fb1, fv1, flast1;
    always @(posedge clk) begin
        fx1    <= in_data;
        fc1    <= fc;
        ft1    <= ft;
        fn1    <= fn;
        fb1    <= fb;
        flast1 <= flast;
        fv1    <= rst ? 1'b0 : take;
    end
    wire signed [15:0] res_p  = fx1 * res_w;
    wire signed [15:0] aff1_p = fx1 * aff1_w;
    wire signed [7:0]  r_val, a_val;
    requant #(.AW(16)) rq_res  (.acc(res_p),  .s(res_s),  .b(res_b),  .y(r_val));
    requant #(.AW(16)) rq_aff1 (.acc(aff1_p), .s(aff1_s), .b(aff1_b), .y(a_val));
    wire [NW-1:0]  r_waddr = fn1 + (fb1 ? TC[NW-1:0] : {NW{1'b0}});
    wire [AAW-1:0] a_waddr = {{(AAW-CW){1'b0}}, fc1} + (fb1 ? C[AAW-1:0] : {AAW{1'b0}});
    always @(posedge clk) begin
        if (fv1) begin
            rmem[r_waddr] <= r_val;
            amem[a_waddr][ft1*8 +: 8] <= a_val;
        end
    end

    // ================= compute =================
    reg          cb, bw;
    reg [CW-1:0] cc;
    reg [TW-1:0] co;
    reg [NW-1:0] cn;        // co * C + cc
    wire cissue = full_a[cb] && !full_b[bw];
    wire clast  = (cc == C[CW-1:0] - 1'b1) && (co == T[TW-1:0] - 1'b1);
    wire olast  = (co == T[TW-1:0] - 1'b1);
    always @(posedge clk) begin
        if (rst) begin
            cb <= 1'b0;
            bw <= 1'b0;
            cc <= {CW{1'b0}};
            co <= {TW{1'b0}};
            cn <= {NW{1'b0}};
        end else if (cissue) begin
            co <= olast ? {TW{1'b0}} : co + 1'b1;
            if (olast) cc <= (cc == C[CW-1:0] - 1'b1) ? {CW{1'b0}} : cc + 1'b1;
            cn <= clast ? {NW{1'b0}}
                : olast ? {{(NW-CW){1'b0}}, cc} + 1'b1
                : cn + C[NW-1:0];
            if (clast) begin
                cb <= ~cb;
                bw <= ~bw;
            end
        end
    end

    // stage 1: column of A, weight row, residual, per-row parameters
    wire [AAW-1:0] a_raddr = {{(AAW-CW){1'b0}}, cc} + (cb ? C[AAW-1:0] : {AAW{1'b0}});
    wire [NW-1:0]  r_raddr = cn + (cb ? TC[NW-1:0] : {NW{1'b0}});
    reg [T*8-1:0]    ca1;
    reg signed [7:0] cr1;
    always @(posedge clk) begin
        ca1 <= amem[a_raddr];
        cr1 <= rmem[r_raddr];
    end
    wire [T*8-1:0]    w1;
    wire signed [7:0] lb1, a2w1, a2b1;
    wire [4:0]        ls1, a2s1;
    hex_rom #(.WIDTH(T*8), .DEPTH(T), .AW(TW), .FILE({NAME, ".lin.W.hex"}), .HEXDIR(HEXDIR))
        rom_lin_w (.clk(clk), .addr(co), .data(w1));
    hex_rom #(.WIDTH(8), .DEPTH(T), .AW(TW), .FILE({NAME, ".lin.b.hex"}), .HEXDIR(HEXDIR))
        rom_lin_b (.clk(clk), .addr(co), .data(lb1));
    hex_rom #(.WIDTH(5), .DEPTH(T), .AW(TW), .FILE({NAME, ".lin.s.hex"}), .HEXDIR(HEXDIR))
        rom_lin_s (.clk(clk), .addr(co), .data(ls1));
    hex_rom #(.WIDTH(8), .DEPTH(C), .AW(CW), .FILE({NAME, ".aff2.w.hex"}), .HEXDIR(HEXDIR))
        rom_aff2_w (.clk(clk), .addr(cc), .data(a2w1));
    hex_rom #(.WIDTH(8), .DEPTH(C), .AW(CW), .FILE({NAME, ".aff2.b.hex"}), .HEXDIR(HEXDIR))
        rom_aff2_b (.clk(clk), .addr(cc), .data(a2b1));
    hex_rom #(.WIDTH(5), .DEPTH(C), .AW(CW), .FILE({NAME, ".aff2.s.hex"}), .HEXDIR(HEXDIR))
        rom_aff2_s (.clk(clk), .addr(cc), .data(a2s1));
    reg [NW-1:0] cn1;
    reg          bw1, cv1, clast1;
    always @(posedge clk) begin
        cn1    <= cn;
        bw1    <= bw;
        clast1 <= clast;
        cv1    <= rst ? 1'b0 : cissue;
    end

    // stage 2: the dot product over the T input tokens, fully unrolled
    reg signed [ACCW-1:0] dot;
    reg signed [15:0]     prod;
    integer j;
    always @* begin
        dot = {ACCW{1'b0}};
        for (j = 0; j < T; j = j + 1) begin
            prod = $signed(w1[j*8 +: 8]) * $signed(ca1[j*8 +: 8]);
            dot  = dot + {{(ACCW-16){prod[15]}}, prod};
        end
    end
    reg signed [ACCW-1:0] acc2;
    reg signed [7:0]      lb2, a2w2, a2b2, cr2;
    reg [4:0]             ls2, a2s2;
    reg [NW-1:0]          cn2;
    reg                   bw2, cv2, clast2;
    always @(posedge clk) begin
        acc2   <= dot;
        lb2    <= lb1;
        ls2    <= ls1;
        a2w2   <= a2w1;
        a2b2   <= a2b1;
        a2s2   <= a2s1;
        cr2    <= cr1;
        cn2    <= cn1;
        bw2    <= bw1;
        clast2 <= clast1;
        cv2    <= rst ? 1'b0 : cv1;
    end

    // stage 3: shift, bias, clip of the token Linear
    wire signed [7:0] u2;
    requant #(.AW(ACCW)) rq_lin (.acc(acc2), .s(ls2), .b(lb2), .y(u2));
    reg signed [7:0] u3, a2w3, a2b3, cr3;
    reg [4:0]        a2s3;
    reg [NW-1:0]     cn3;
    reg              bw3, cv3, clast3;
    always @(posedge clk) begin
        u3     <= u2;
        a2w3   <= a2w2;
        a2b3   <= a2b2;
        a2s3   <= a2s2;
        cr3    <= cr2;
        cn3    <= cn2;
        bw3    <= bw2;
        clast3 <= clast2;
        cv3    <= rst ? 1'b0 : cv2;
    end

    // stage 4: aff2, the residual add, write to B
    wire signed [15:0] a2p = u3 * a2w3;
    wire signed [7:0]  z3;
    requant #(.AW(16)) rq_aff2 (.acc(a2p), .s(a2s3), .b(a2b3), .y(z3));
    wire signed [8:0]  sum3 = {z3[7], z3} + {cr3[7], cr3};
    wire signed [7:0]  y3   = (sum3 > 9'sd127) ? 8'sd127 : (sum3 < -9'sd128) ? -8'sd128 : sum3[7:0];
    wire [NW-1:0]      b_waddr = cn3 + (bw3 ? TC[NW-1:0] : {NW{1'b0}});
    always @(posedge clk) begin
        if (cv3) bmem[b_waddr] <= y3;
    end

    // ================= drain =================
    reg          db;
    reg [NW-1:0] dn;
    reg [FAW:0]  credits;
    wire         pop;
    wire dissue = full_b[db] && (credits != {(FAW+1){1'b0}});
    wire dlast  = (dn == TC[NW-1:0] - 1'b1);
    always @(posedge clk) begin
        if (rst) begin
            db      <= 1'b0;
            dn      <= {NW{1'b0}};
            credits <= 1 << FAW;
        end else begin
            if (dissue) begin
                dn <= dlast ? {NW{1'b0}} : dn + 1'b1;
                if (dlast) db <= ~db;
            end
            credits <= credits - {{FAW{1'b0}}, dissue} + {{FAW{1'b0}}, pop};
        end
    end
    wire [NW-1:0]    b_raddr = dn + (db ? TC[NW-1:0] : {NW{1'b0}});
    reg signed [7:0] dd1;
    reg              dv1;
    always @(posedge clk) begin
        dd1 <= bmem[b_raddr];
        dv1 <= rst ? 1'b0 : dissue;
    end
    wire fifo_in_ready;  // always high when an element arrives: the credits reserved its slot
    stream_fifo #(.W(8), .AW(FAW)) fifo (
        .clk(clk), .rst(rst),
        .in_valid(dv1), .in_ready(fifo_in_ready), .in_data(dd1),
        .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data));
    assign pop = out_valid && out_ready;
    wire unused_ready = fifo_in_ready;

    // ================= buffer flags =================
    always @(posedge clk) begin
        if (rst) begin
            full_a <= 2'b00;
            full_b <= 2'b00;
        end else begin
            if (cissue && clast) full_a[cb] <= 1'b0;   // last column read this edge
            if (fv1 && flast1)   full_a[fb1] <= 1'b1;  // last element written this edge
            if (dissue && dlast) full_b[db] <= 1'b0;
            if (cv3 && clast3)   full_b[bw3] <= 1'b1;
        end
    end
endmodule

`default_nettype wire
