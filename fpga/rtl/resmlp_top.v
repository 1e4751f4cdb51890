// resmlp_top: the whole INT8 ResMLP (docs/METHOD.md section 10) as a
// streaming dataflow pipeline, one stage per layer:
//
//   embed (row_linear P -> C)
//   DEPTH x [ token_mixer (affines, transpose buffers, T x T token Linear,
//             aff2, residual add)
//           -> channel_mlp (res affine, [lut1], lin1 C -> H with relu8 or
//             lut2, lin2 H -> C, residual add) ]
//   mean_pool (rounded mean over the T tokens)
//   head (row_linear C -> K)
//
// Images enter as T x P signed 8-bit patch codes, token rows in order
// (element (t, v) at position t * P + v), back to back; each image leaves as
// K signed 8-bit logits. Every stage has its own buffers, so consecutive
// images overlap: a new image can enter as soon as the embed stage has room,
// and the steady-state interval between images is set by the slowest stage
// (T * max(C, H) clocks; see fpga/README.md).
//
// All weights, biases, shifts and tables are read with $readmemh from one
// folder of hex files (the plusarg +hexdir=<dir> in simulation, HEXDIR in
// synthesis), named after the tensors of quant_params.npz:
// embed.W.hex, blocks.<i>.tm.lin.W.hex, head.b.hex, ... (fpga/README.md,
// "Parameter files"; fpga/hexdump.py writes them).
//
// Parameters
//   P       patch values per token (48 for 3 x 4 x 4 patches, 16 for 1 x 4 x 4)
//   C       channels (96 in the paper)
//   H       hidden width of the channel MLP (96 * hidden factor)
//   ACT     0: ReLU MLP, 1: LERP-PSA tables (lerp_unit) around lin1
//   M       LERP table address bits (6 in the paper; 2^M + 1 entries per table)
//   DEPTH   number of blocks, 1..10
//   T       tokens per image, a power of two (64)
//   K       classes (logits per image)
//   HEXDIR  folder of the hex files in synthesis (simulation: +hexdir=)
//
// Ports (valid/ready streams of signed 8-bit codes; a code moves on a rising
// edge where valid and ready are both high; see the timing diagram in
// fpga/README.md)
//   clk        clock, all registers on its rising edge
//   rst        synchronous active-high reset (hold for 2 clocks)
//   in_valid   in_data carries a patch code
//   in_ready   the pipeline takes in_data this clock
//   in_data    patch code of the next element
//   out_valid  out_data carries a logit
//   out_ready  the consumer takes out_data this clock
//   out_data   logit of the next element (K per image, class order)

`default_nettype none

module resmlp_top #(
    parameter integer P      = 16,
    parameter integer C      = 96,
    parameter integer H      = 96,
    parameter integer ACT    = 0,
    parameter integer M      = 6,
    parameter integer DEPTH  = 4,
    parameter integer T      = 64,
    parameter integer K      = 10,
    parameter         HEXDIR = "."
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
`ifndef SYNTHESIS
    initial begin
        if (DEPTH < 1 || DEPTH > 10 || (ACT != 0 && ACT != 1)) begin
            $display("resmlp_top: need DEPTH in 1..10 and ACT in {0, 1}");
            $finish;
        end
    end
`endif

    // Stream between stages: s[0] after embed, s[2i+1] after block i's token
    // mixer, s[2i+2] after its channel MLP.
    wire [2*DEPTH:0]   s_valid, s_ready;
    wire [16*DEPTH+7:0] s_data;

    row_linear #(.I(P), .O(C), .ACT(0), .M(M), .NAME("embed"), .HEXDIR(HEXDIR)) embed (
        .clk(clk), .rst(rst),
        .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
        .out_valid(s_valid[0]), .out_ready(s_ready[0]), .out_data(s_data[7:0]));

    genvar i;
    generate
        for (i = 0; i < DEPTH; i = i + 1) begin : g_block
            localparam [7:0] DIGIT = 8'd48 + i;    // block index as one ASCII digit
            token_mixer #(.T(T), .C(C), .NAME({"blocks.", DIGIT, ".tm"}), .HEXDIR(HEXDIR)) tm (
                .clk(clk), .rst(rst),
                .in_valid(s_valid[2*i]), .in_ready(s_ready[2*i]), .in_data(s_data[16*i +: 8]),
                .out_valid(s_valid[2*i+1]), .out_ready(s_ready[2*i+1]),
                .out_data(s_data[16*i+8 +: 8]));
            channel_mlp #(.C(C), .H(H), .ACT(ACT), .M(M), .NAME({"blocks.", DIGIT, ".mlp"}),
                          .HEXDIR(HEXDIR)) mlp (
                .clk(clk), .rst(rst),
                .in_valid(s_valid[2*i+1]), .in_ready(s_ready[2*i+1]),
                .in_data(s_data[16*i+8 +: 8]),
                .out_valid(s_valid[2*i+2]), .out_ready(s_ready[2*i+2]),
                .out_data(s_data[16*i+16 +: 8]));
        end
    endgenerate

    wire              p_valid, p_ready;
    wire signed [7:0] p_data;
    mean_pool #(.T(T), .C(C)) pool (
        .clk(clk), .rst(rst),
        .in_valid(s_valid[2*DEPTH]), .in_ready(s_ready[2*DEPTH]), .in_data(s_data[16*DEPTH +: 8]),
        .out_valid(p_valid), .out_ready(p_ready), .out_data(p_data));

    row_linear #(.I(C), .O(K), .ACT(0), .M(M), .NAME("head"), .HEXDIR(HEXDIR)) head (
        .clk(clk), .rst(rst),
        .in_valid(p_valid), .in_ready(p_ready), .in_data(p_data),
        .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data));
endmodule

`default_nettype wire
