// requant: the integer rescaling of every Linear and affine layer
// (docs/METHOD.md section 10), purely combinational:
//
//   y = clip8(rshift(acc, s) + b)
//   rshift(v, s) = (v + 2^(s-1)) >>> s  for s >= 1 (round half up), v for s = 0
//   clip8(v)     = min(max(v, -128), 127)
//
// With RELU = 1 the result is also passed through relu8(y) = max(y, 0).
//
// Parameters
//   AW    width of the signed accumulator acc, 9..62
//   RELU  0: y as above; 1: max(y, 0)
//
// Ports
//   acc   signed accumulator (a dot product or a product x * w)
//   s     shift, 0..31
//   b     signed 8-bit bias, added after the shift
//   y     signed 8-bit result

`default_nettype none

module requant #(
    parameter integer AW   = 32,
    parameter integer RELU = 0
) (
    input  wire signed [AW-1:0] acc,
    input  wire        [4:0]    s,
    input  wire signed [7:0]    b,
    output wire signed [7:0]    y
);
    // Internal width: 2^(s-1) <= 2^30 must fit next to acc, plus guard bits
    // so that acc + 2^(s-1) and the bias never overflow.
    localparam integer IW = ((AW > 32) ? AW : 32) + 2;
    wire signed [IW-1:0] acc_x   = {{(IW-AW){acc[AW-1]}}, acc};
    wire signed [IW-1:0] half    = (s == 5'd0) ? {IW{1'b0}}
                                               : ({{(IW-1){1'b0}}, 1'b1} << (s - 5'd1));
    wire signed [IW-1:0] shifted = (acc_x + half) >>> s;
    wire signed [IW-1:0] sum     = shifted + {{(IW-8){b[7]}}, b};
    wire signed [7:0]  clipped = (sum > 127)  ? 8'sd127
                               : (sum < -128) ? -8'sd128
                               : sum[7:0];
    assign y = (RELU != 0 && clipped[7]) ? 8'sd0 : clipped;
endmodule

`default_nettype wire
