// dot_tree: a pipelined signed 8-bit dot product of N pairs,
//
//   sum = sum over k of a[k] * b[k]
//
// with every multiply registered (mul8) and the N products added by a
// balanced binary tree of ceil(log2 N) adder levels, a register after every
// LPS levels (and after the last). No combinational path crosses more than
// one multiplier or more than LPS adders, whatever N is.
//
// Latency: LAT = 1 + ceil(ceil(log2 N) / LPS) clocks from the operands to
// the sum (1 for N = 1). A valid bit and a side band of SW bits travel with
// the operands and come out with their sum (fixed latency, no stall: the
// caller issues at most what it can take).
//
// Widths: a product is 16 bits; level l of the tree holds ceil(N / 2^l)
// values of 16 + l bits (a level adds one bit), so the sum has
// 16 + ceil(log2 N) bits and can never overflow.
//
// Parameters
//   N    number of products, >= 1
//   LPS  adder levels per pipeline stage, >= 1
//   SW   side-band width, >= 1
//
// Ports
//   clk, rst             clock; synchronous active-high reset (clears the valid pipe)
//   in_valid             the operands of this clock form a dot product to compute
//   in_a, in_b           N signed 8-bit operands each, element k in bits [8k+7:8k]
//   in_side              carried along unchanged
//   out_valid, out_sum   the dot product of the operands presented LAT clocks earlier
//   out_side             their side band

`default_nettype none

module dot_tree #(
    parameter integer N   = 16,
    parameter integer LPS = 2,
    parameter integer SW  = 1
) (
    input  wire                              clk,
    input  wire                              rst,
    input  wire                              in_valid,
    input  wire [N*8-1:0]                    in_a,
    input  wire [N*8-1:0]                    in_b,
    input  wire [SW-1:0]                     in_side,
    output wire                              out_valid,
    output wire signed [16+((N > 1) ? $clog2(N) : 0)-1:0] out_sum,
    output wire [SW-1:0]                     out_side
);
    localparam integer LV  = (N > 1) ? $clog2(N) : 0;     // adder levels
    localparam integer LAT = 1 + (LV + LPS - 1) / LPS;    // clocks, operands to sum
    localparam integer OW  = 16 + LV;

`ifndef SYNTHESIS
    initial begin
        if (N < 1 || LPS < 1 || SW < 1) begin
            $display("dot_tree: need N >= 1, LPS >= 1, SW >= 1");
            $finish;
        end
    end
`endif

    genvar l, k;
    generate
        for (l = 0; l <= LV; l = l + 1) begin : lv
            localparam integer NL = (N + (1 << l) - 1) >> l;  // values at this level
            localparam integer WL = 16 + l;                    // their width
            wire [NL*WL-1:0] v;
            if (l == 0) begin : g_mul
                for (k = 0; k < N; k = k + 1) begin : m
                    mul8 u (.clk(clk), .a(in_a[8*k +: 8]), .b(in_b[8*k +: 8]), .p(v[16*k +: 16]));
                end
            end else begin : g_add
                localparam integer NP = (N + (1 << (l - 1)) - 1) >> (l - 1);   // values below
                wire [NL*WL-1:0] s;
                for (k = 0; k < NL; k = k + 1) begin : n
                    wire signed [WL-2:0] x0 = lv[l-1].v[(2*k)*(WL-1) +: WL-1];
                    if (2 * k + 1 < NP) begin : g_pair
                        wire signed [WL-2:0] x1 = lv[l-1].v[(2*k+1)*(WL-1) +: WL-1];
                        assign s[k*WL +: WL] = {x0[WL-2], x0} + {x1[WL-2], x1};
                    end else begin : g_odd
                        assign s[k*WL +: WL] = {x0[WL-2], x0};
                    end
                end
                if (l % LPS == 0 || l == LV) begin : g_reg
                    reg [NL*WL-1:0] r;
                    always @(posedge clk) r <= s;
                    assign v = r;
                end else begin : g_comb
                    assign v = s;
                end
            end
        end
    endgenerate
    assign out_sum = lv[LV].v[OW-1:0];

    pipe_delay #(.W(1), .D(LAT), .RST(1)) dv (.clk(clk), .rst(rst), .d(in_valid), .q(out_valid));
    pipe_delay #(.W(SW), .D(LAT), .RST(0)) ds (.clk(clk), .rst(rst), .d(in_side), .q(out_side));
endmodule

`default_nettype wire
