// ew_stage: an element-wise layer on a stream of rows of F channels
// (element n of the stream belongs to channel n mod F):
//
//   MODE 1, affine:  y = clip8(rshift(x * w[c], s[c]) + b[c])   (affine_rom + affine_unit)
//   MODE 2, LERP:    y = lerp8(x, lut[c])  (docs/METHOD.md section 9, via lerp_lane)
//
// One element per clock, pipelined (MODE 1: ROM read, registered multiply,
// 3 requant stages; MODE 2: the 4 stages of lerp_unit); the results leave
// through a credit_fifo of at least 2^FAW codes (no element is ever
// dropped). A deep FIFO (large FAW) lets this stage hold a residual branch
// while the other branch of a block is still computing.
//
// End of image: in_last marks the last element of an image (ROWS rows of F);
// the stage counts elements itself and raises err (sticky) when in_last
// disagrees; out_last carries the marker.
//
// Parameter files (see fpga/README.md): MODE 1 reads <NAME>.w.hex,
// <NAME>.b.hex, <NAME>.s.hex (F lines each); MODE 2 reads <NAME>.hex
// (F * (2^M + 1) entries, channel-major).
//
// Parameters
//   F       channels, >= 2
//   ROWS    rows per image, >= 1 (for the end-of-image check)
//   MODE    1: affine, 2: LERP tables
//   M       table address bits for MODE 2 (1..7)
//   NAME    tensor name, e.g. "blocks.0.mlp.res" or "blocks.0.mlp.lut1"
//   HEXDIR  hex folder when no +hexdir= plusarg is given (synthesis)
//   FAW     log2 of the output FIFO depth, at least (raised to cover the pipeline)
//
// Ports (valid/ready streams of signed 8-bit codes)
//   clk, rst   clock and synchronous active-high reset (channel count to 0)
//   in_valid, in_ready, in_data, in_last       input elements
//   out_valid, out_ready, out_data, out_last   output elements, same order
//   err        sticky: in_last disagreed with the element count, or the FIFO overflowed

`default_nettype none

module ew_stage #(
    parameter integer F      = 96,
    parameter integer ROWS   = 64,
    parameter integer MODE   = 1,
    parameter integer M      = 6,
    parameter         NAME   = "res",
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
    localparam integer CW   = $clog2(F);
    localparam integer RW   = (ROWS > 1) ? $clog2(ROWS) : 1;
    localparam integer LAT  = (MODE == 2) ? 4 : 5;
    localparam integer NEED = $clog2(LAT + 4);
    localparam integer AWF  = (FAW > NEED) ? FAW : NEED;

    reg [CW-1:0] c;             // channel of the next input element
    reg [RW-1:0] r;             // its row
    reg          last_err;
    wire         can_claim;
    assign in_ready = can_claim;
    wire take    = in_valid && in_ready;
    wire c_last  = (c == F[CW-1:0] - 1'b1);
    wire img_end = c_last && (r == ROWS[RW-1:0] - 1'b1);
    always @(posedge clk) begin
        if (rst) begin
            c        <= {CW{1'b0}};
            r        <= {RW{1'b0}};
            last_err <= 1'b0;
        end else if (take) begin
            c <= c_last ? {CW{1'b0}} : c + 1'b1;
            if (c_last) r <= img_end ? {RW{1'b0}} : r + 1'b1;
            if (in_last != img_end) last_err <= 1'b1;
        end
    end
`ifndef SYNTHESIS
    always @(posedge clk)
        if (!rst && take && (in_last != img_end) && !last_err)
            $display("ERROR %m: end-of-image marker %0d at row %0d channel %0d of %0d x %0d",
                     in_last, r, c, ROWS, F);
`endif

    wire              fin_valid, fin_last;
    wire signed [7:0] fin_data;
    generate
        if (MODE == 2) begin : g_lerp
            lerp_lane #(.F(F), .M(M), .FILE({NAME, ".hex"}), .HEXDIR(HEXDIR), .SW(1)) lerp (
                .clk(clk), .rst(rst), .in_valid(take), .in_x(in_data), .in_f(c), .in_side(in_last),
                .out_valid(fin_valid), .out_y(fin_data), .out_side(fin_last));
        end else begin : g_affine
            wire signed [7:0] w1, b1;
            wire [4:0]        s1;
            affine_rom #(.C(F), .NAME(NAME), .HEXDIR(HEXDIR)) rom (
                .clk(clk), .addr(c), .w(w1), .b(b1), .s(s1));
            reg signed [7:0] x1;
            reg              v1, l1;
            always @(posedge clk) begin
                x1 <= in_data;
                l1 <= in_last;
                v1 <= rst ? 1'b0 : take;
            end
            affine_unit #(.SW(1)) aff (
                .clk(clk), .rst(rst), .in_valid(v1), .in_x(x1), .in_w(w1), .in_b(b1), .in_s(s1),
                .in_side(l1), .out_valid(fin_valid), .out_y(fin_data), .out_side(fin_last));
        end
    endgenerate

    wire fifo_err;
    credit_fifo #(.W(9), .AW(AWF)) fifo (
        .clk(clk), .rst(rst), .claim(take), .can_claim(can_claim),
        .in_valid(fin_valid), .in_data({fin_last, fin_data}),
        .out_valid(out_valid), .out_ready(out_ready), .out_data({out_last, out_data}), .err(fifo_err));
    assign err = last_err | fifo_err;
endmodule

`default_nettype wire
