// lerp_unit: one lane of the 8-bit LERP lookup activation (docs/METHOD.md section 9).
//
// Singh & Bazargan, "Compressing Neural Networks Using Learnable 1-D
// Non-Linear Functions", ACM TRETS 2025: a trained 1-D activation becomes a
// (2^M + 1)-entry signed 8-bit table per feature, evaluated with one
// subtraction, one small multiply and a shift:
//
//   idx = x + 128,  hi = idx >> L,  lo = idx & (2^L - 1),  L = 8 - M
//   y   = T[hi] + (((T[hi + 1] - T[hi]) * lo + 2^(L-1)) >>> L)
//
// The rounding is half up (arithmetic shift); y lies between T[hi] and
// T[hi + 1], so it always fits in 8 bits.
//
// The table lives outside this module (see lerp_layer.v): the unit issues
// two read addresses, base + hi and base + hi + 1, to a memory with a
// one-cycle synchronous read and takes the two entries back a cycle later.
//
// Pipeline, one result per clock, latency 4 cycles (valid in -> valid out):
//   edge 1  address stage: rd_addr_a/b, lo and valid registered
//   edge 2  memory read (in the parent): rd_data_a/b valid afterwards
//   edge 3  multiply stage: (T[hi+1] - T[hi]) * lo and T[hi] registered
//   edge 4  output stage: rounded sum registered as out_y
//
// Parameters
//   M   table address bits per feature, 1..7 (2^M + 1 entries per feature)
//   AW  width of table addresses (base + hi + 1 must fit)
//
// Ports
//   clk        clock, all registers on its rising edge
//   rst        synchronous active-high reset (clears the valid pipeline)
//   in_valid   in_x / in_base carry an element this cycle
//   in_x       signed 8-bit input code
//   in_base    table address of entry 0 of this element's feature
//   rd_addr_a  table address of entry hi      (to the memory)
//   rd_addr_b  table address of entry hi + 1  (to the memory)
//   rd_data_a  entry at rd_addr_a, one clock after the address (signed)
//   rd_data_b  entry at rd_addr_b, one clock after the address (signed)
//   out_valid  out_y carries a result this cycle
//   out_y      signed 8-bit result

`default_nettype none

module lerp_unit #(
    parameter integer M  = 6,
    parameter integer AW = 16
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire                 in_valid,
    input  wire signed [7:0]    in_x,
    input  wire [AW-1:0]        in_base,
    output reg  [AW-1:0]        rd_addr_a,
    output reg  [AW-1:0]        rd_addr_b,
    input  wire signed [7:0]    rd_data_a,
    input  wire signed [7:0]    rd_data_b,
    output reg                  out_valid,
    output reg  signed [7:0]    out_y
);
    localparam integer L = 8 - M;              // fraction bits

`ifndef SYNTHESIS
    initial begin
        if (M < 1 || M > 7) begin
            $display("lerp_unit: parameter M must be in 1..7, got %0d", M);
            $finish;
        end
    end
`endif

    // x + 128 on an 8-bit two's-complement code is a flip of the sign bit.
    wire [7:0]   idx = {~in_x[7], in_x[6:0]};
    wire [M-1:0] hi  = idx[7:L];
    wire [L-1:0] lo  = idx[L-1:0];

    // Stage 1: addresses.
    reg         s1_valid;
    reg [L-1:0] s1_lo;
    always @(posedge clk) begin
        rd_addr_a <= in_base + {{(AW-M){1'b0}}, hi};
        rd_addr_b <= in_base + {{(AW-M){1'b0}}, hi} + {{(AW-1){1'b0}}, 1'b1};
        s1_lo     <= lo;
        s1_valid  <= rst ? 1'b0 : in_valid;
    end

    // Stage 2: the parent's memory registers the two entries; align lo and valid.
    reg         s2_valid;
    reg [L-1:0] s2_lo;
    always @(posedge clk) begin
        s2_lo    <= s1_lo;
        s2_valid <= rst ? 1'b0 : s1_valid;
    end

    // Stage 3: difference times fraction. diff in [-255, 255] (9 bits),
    // lo in [0, 2^L - 1]: the product needs 9 + L + 1 bits.
    wire signed [8:0]    diff = {rd_data_b[7], rd_data_b} - {rd_data_a[7], rd_data_a};
    wire signed [L:0]    lo_s = {1'b0, s2_lo};
    reg  signed [L+9:0]  s3_prod;
    reg  signed [7:0]    s3_y0;
    reg                  s3_valid;
    always @(posedge clk) begin
        s3_prod  <= diff * lo_s;
        s3_y0    <= rd_data_a;
        s3_valid <= rst ? 1'b0 : s2_valid;
    end

    // Stage 4: round half up with an arithmetic shift, add the left entry.
    wire signed [L+9:0] half    = {{(L+9){1'b0}}, 1'b1} <<< (L - 1);
    wire signed [L+9:0] rounded = (s3_prod + half) >>> L;
    wire signed [9:0]   sum     = {{2{s3_y0[7]}}, s3_y0} + rounded[9:0];
    always @(posedge clk) begin
        out_y     <= sum[7:0];
        out_valid <= rst ? 1'b0 : s3_valid;
    end

    // Only the low 10 bits of the shifted product can be non-sign bits, and
    // the sum provably fits in 8 bits (it lies between two table entries).
    wire unused_ok = &{1'b0, rounded[L+9:10], sum[9:8]};
endmodule

`default_nettype wire
