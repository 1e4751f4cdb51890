// affine_unit: one element of an integer affine layer (docs/METHOD.md
// section 10), pipelined:
//
//   y = clip8(rshift(x * w, s) + b)
//
// a registered multiply (mul8) followed by requant (3 stages): latency 4
// clocks. The caller presents x, w, b and s in the same clock; valid and a
// side band of SW bits travel along.
//
// Parameters
//   SW   side-band width, >= 1
//
// Ports
//   clk, rst      clock; synchronous active-high reset (clears the valid pipe)
//   in_valid      x, w, b, s of this clock form one element
//   in_x, in_w    signed 8-bit code and weight
//   in_b          signed 8-bit bias
//   in_s          shift, 0..31
//   in_side       carried along unchanged
//   out_valid     out_y is the result of the element presented 4 clocks earlier
//   out_y         signed 8-bit result
//   out_side      its side band

`default_nettype none

module affine_unit #(
    parameter integer SW = 1
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              in_valid,
    input  wire signed [7:0] in_x,
    input  wire signed [7:0] in_w,
    input  wire signed [7:0] in_b,
    input  wire        [4:0] in_s,
    input  wire     [SW-1:0] in_side,
    output wire              out_valid,
    output wire signed [7:0] out_y,
    output wire     [SW-1:0] out_side
);
    wire signed [15:0] p;
    mul8 mul (.clk(clk), .a(in_x), .b(in_w), .p(p));
    reg signed [7:0] b1;
    reg [4:0]        s1;
    reg [SW-1:0]     side1;
    reg              v1;
    always @(posedge clk) begin
        b1    <= in_b;
        s1    <= in_s;
        side1 <= in_side;
        v1    <= rst ? 1'b0 : in_valid;
    end
    requant #(.AW(16), .RELU(0), .SW(SW)) rq (
        .clk(clk), .rst(rst), .in_valid(v1), .in_acc(p), .in_s(s1), .in_b(b1), .in_side(side1),
        .out_valid(out_valid), .out_y(out_y), .out_side(out_side));
endmodule

`default_nettype wire
