// requant: the integer rescaling of every Linear and affine layer
// (docs/METHOD.md section 10), as a 3-stage pipeline:
//
//   y = clip8(rshift(acc, s) + b)
//   rshift(v, s) = (v + 2^(s-1)) >>> s  for s >= 1 (round half up), v for s = 0
//   clip8(v)     = min(max(v, -128), 127)
//
// With RELU = 1 the result is also passed through relu8(y) = max(y, 0).
//
// Stages (one register after each, so no path holds more than one adder or
// the 5-level shifter):
//   1  acc + 2^(s-1)      (the rounding constant decoded from s)
//   2  >>> s              (barrel shift, 0..31)
//   3  + b, clip8, relu8
// Latency 3 clocks; valid and a side band of SW bits travel along.
//
// Parameters
//   AW    width of the signed accumulator acc, 9..62
//   RELU  0: y as above; 1: max(y, 0)
//   SW    side-band width, >= 1
//
// Ports
//   clk, rst    clock; synchronous active-high reset (clears the valid pipe)
//   in_valid    acc, s, b of this clock form one element
//   in_acc      signed accumulator (a dot product or a product x * w)
//   in_s        shift, 0..31
//   in_b        signed 8-bit bias, added after the shift
//   in_side     carried along unchanged
//   out_valid   out_y is the result of the element presented 3 clocks earlier
//   out_y       signed 8-bit result
//   out_side    its side band

`default_nettype none

module requant #(
    parameter integer AW   = 32,
    parameter integer RELU = 0,
    parameter integer SW   = 1
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire                 in_valid,
    input  wire signed [AW-1:0] in_acc,
    input  wire        [4:0]    in_s,
    input  wire signed [7:0]    in_b,
    input  wire        [SW-1:0] in_side,
    output wire                 out_valid,
    output reg  signed [7:0]    out_y,
    output wire        [SW-1:0] out_side
);
    // Internal width: 2^(s-1) <= 2^30 must fit next to acc, plus guard bits
    // so that acc + 2^(s-1) and the bias never overflow.
    localparam integer IW = ((AW > 32) ? AW : 32) + 2;

    // stage 1: add the rounding constant
    wire signed [IW-1:0] acc_x = {{(IW-AW){in_acc[AW-1]}}, in_acc};
    wire signed [IW-1:0] half  = (in_s == 5'd0) ? {IW{1'b0}}
                                                : ({{(IW-1){1'b0}}, 1'b1} << (in_s - 5'd1));
    reg signed [IW-1:0] a1;
    reg [4:0]           s1;
    reg signed [7:0]    b1;
    always @(posedge clk) begin
        a1 <= acc_x + half;
        s1 <= in_s;
        b1 <= in_b;
    end

    // stage 2: arithmetic shift
    reg signed [IW-1:0] a2;
    reg signed [7:0]    b2;
    always @(posedge clk) begin
        a2 <= a1 >>> s1;
        b2 <= b1;
    end

    // stage 3: bias, saturation, optional relu8
    wire signed [IW-1:0] sum     = a2 + {{(IW-8){b2[7]}}, b2};
    wire signed [7:0]    clipped = (sum > 127)  ? 8'sd127
                                 : (sum < -128) ? -8'sd128
                                 : sum[7:0];
    always @(posedge clk) out_y <= (RELU != 0 && clipped[7]) ? 8'sd0 : clipped;

    pipe_delay #(.W(1), .D(3), .RST(1)) dv (.clk(clk), .rst(rst), .d(in_valid), .q(out_valid));
    pipe_delay #(.W(SW), .D(3), .RST(0)) ds (.clk(clk), .rst(rst), .d(in_side), .q(out_side));
endmodule

`default_nettype wire
