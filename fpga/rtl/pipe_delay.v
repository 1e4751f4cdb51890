// pipe_delay: a W-bit signal delayed by D clocks (a shift register).
//
// Used to keep side-band signals (valid bits, end-of-image markers, indices,
// parameters) aligned with a datapath of fixed latency. With RST = 1 every
// stage clears on reset (use it for valid bits, so that a random power-up
// state never fakes a valid element); with RST = 0 the stages have no reset.
//
// Parameters
//   W    width in bits, >= 1
//   D    delay in clocks, >= 0 (0: a wire)
//   RST  1: synchronous reset of every stage to 0; 0: no reset
//
// Ports
//   clk, rst  clock, synchronous active-high reset (only with RST = 1)
//   d         input
//   q         d delayed by D clocks

`default_nettype none

module pipe_delay #(
    parameter integer W   = 1,
    parameter integer D   = 1,
    parameter integer RST = 0
) (
    input  wire         clk,
    input  wire         rst,
    input  wire [W-1:0] d,
    output wire [W-1:0] q
);
    generate
        if (D == 0) begin : g_wire
            assign q = d;
            wire unused_ok = &{1'b0, clk, rst};
        end else begin : g_regs
            reg [W*D-1:0] r;      // stage k (k clocks old minus one) in bits [W*k +: W]
            if (D == 1) begin : g_one
                always @(posedge clk) r <= (RST != 0 && rst) ? {W{1'b0}} : d;
            end else begin : g_many
                always @(posedge clk) r <= (RST != 0 && rst) ? {(W*D){1'b0}} : {r[W*(D-1)-1:0], d};
            end
            assign q = r[W*D-1 -: W];
            if (RST == 0) begin : g_norst
                wire unused_ok = &{1'b0, rst};
            end
        end
    endgenerate
endmodule

`default_nettype wire
