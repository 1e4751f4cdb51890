// resmlp_top: the whole INT8 ResMLP (docs/METHOD.md section 10) as a
// streaming dataflow pipeline, one stage per layer:
//
//   embed (row_linear P -> C)
//   DEPTH x [ token_mixer (affines, transpose buffers, T x T token Linear,
//             aff2, residual add)
//           -> channel_mlp (res affine, [lut1], lin1 C -> H with relu8 or
//             lut2, lin2 H -> C, residual add) ]
//   mean_pool (rounded mean over the T tokens)
//   head (row_linear C -> K, folded onto HEADMUL multipliers)
//
// Images enter as T x P signed 8-bit patch codes, token rows in order
// (element (t, v) at position t * P + v), back to back; each image leaves as
// K signed 8-bit logits. Every stage has its own buffers, so consecutive
// images overlap: a new image can enter as soon as the embed stage has room,
// and the steady-state interval between images is set by the slowest stage
// (T * max(C, H / LANES) clocks; see fpga/README.md). Every multiply is
// registered and every dot product is a pipelined balanced adder tree with
// LPS adder levels per stage (dot_tree.v).
//
// All weights, biases, shifts and tables are read with $readmemh from one
// folder of hex files (the plusarg +hexdir=<dir> in simulation, HEXDIR in
// synthesis), named after the tensors of quant_params.npz:
// embed.W.hex, blocks.<i>.tm.lin.W.hex, head.b.hex, ... (fpga/README.md,
// "Parameter files"; fpga/hexdump.py writes them).
//
// End of image: in_last marks the last code of each image; every stage
// counts its own elements, checks the marker it receives and passes its own
// on, so a miscount anywhere raises that stage's bit of err instead of
// shifting the images. out_last marks each image's last logit.
//
// Parameters
//   P        patch values per token (48 for 3 x 4 x 4 patches, 16 for 1 x 4 x 4)
//   C        channels (96 in the paper)
//   H        hidden width of the channel MLP (96 * hidden factor), a multiple of LANES
//   ACT      0: ReLU MLP, 1: LERP-PSA tables (lerp_unit) around lin1
//   M        LERP table address bits (6 in the paper; 2^M + 1 entries per table)
//   DEPTH    number of blocks, >= 1
//   T        tokens per image, a power of two (64)
//   K        classes (logits per image)
//   LANES    output lanes of each lin1 (input lanes of lin2): 1 is the authors'
//            structure, H / C balances a wide MLP (see channel_mlp.v)
//   HEADMUL  multipliers of the head (a divisor of C): it makes one logit per
//            C / HEADMUL clocks, K per image
//   LPS      adder levels per pipeline stage of every dot product, >= 1
//   HEXDIR   folder of the hex files in synthesis (simulation: +hexdir=)
//
// Ports (valid/ready streams of signed 8-bit codes; a code moves on a rising
// edge where valid and ready are both high; see the timing diagram in
// fpga/README.md)
//   clk        clock, all registers on its rising edge
//   rst        synchronous active-high reset (hold for 2 clocks)
//   in_valid   in_data carries a patch code
//   in_ready   the pipeline takes in_data this clock
//   in_data    patch code of the next element
//   in_last    the code is the last of its image
//   out_valid  out_data carries a logit
//   out_ready  the consumer takes out_data this clock
//   out_data   logit of the next element (K per image, class order)
//   out_last   the logit is the last of its image
//   err        one sticky bit per stage (0 embed, 2i + 1 token mixer i,
//              2i + 2 channel MLP i, 2 DEPTH + 1 mean pool, 2 DEPTH + 2 head):
//              its end-of-image check or output FIFO check failed

`default_nettype none

module resmlp_top #(
    parameter integer P       = 16,
    parameter integer C       = 96,
    parameter integer H       = 96,
    parameter integer ACT     = 0,
    parameter integer M       = 6,
    parameter integer DEPTH   = 4,
    parameter integer T       = 64,
    parameter integer K       = 10,
    parameter integer LANES   = 1,
    parameter integer HEADMUL = 8,
    parameter integer LPS     = 2,
    parameter         HEXDIR  = "."
) (
    input  wire               clk,
    input  wire               rst,
    input  wire               in_valid,
    output wire               in_ready,
    input  wire signed [7:0]  in_data,
    input  wire               in_last,
    output wire               out_valid,
    input  wire               out_ready,
    output wire signed [7:0]  out_data,
    output wire               out_last,
    output wire [2*DEPTH+2:0] err
);
`ifndef SYNTHESIS
    initial begin
        if (DEPTH < 1 || (ACT != 0 && ACT != 1) || HEADMUL < 1 || C % HEADMUL != 0) begin
            $display("resmlp_top: need DEPTH >= 1, ACT in {0, 1}, HEADMUL a divisor of C");
            $finish;
        end
    end
`endif

    // Stream between stages: s[0] after embed, s[2i+1] after block i's token
    // mixer, s[2i+2] after its channel MLP.
    wire [2*DEPTH:0]   s_valid, s_ready, s_last;
    wire [16*DEPTH+7:0] s_data;

    row_linear #(.I(P), .O(C), .ROWS(T), .ACT(0), .M(M), .LPS(LPS), .NAME("embed"),
                 .HEXDIR(HEXDIR)) embed (
        .clk(clk), .rst(rst),
        .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data), .in_last(in_last),
        .out_valid(s_valid[0]), .out_ready(s_ready[0]), .out_data(s_data[7:0]),
        .out_last(s_last[0]), .err(err[0]));

    genvar i;
    generate
        for (i = 0; i < DEPTH; i = i + 1) begin : g_block
            // the block index in decimal, without leading zeros, for the tensor names
            localparam integer DL = (i >= 100) ? 3 : (i >= 10) ? 2 : 1;
            localparam [23:0]  D3 = {8'd48 + i[7:0] / 8'd100, 8'd48 + (i[7:0] / 8'd10) % 8'd10,
                                     8'd48 + i[7:0] % 8'd10};
            localparam [8*DL-1:0] IDX = D3[8*DL-1:0];
            token_mixer #(.T(T), .C(C), .LPS(LPS), .NAME({"blocks.", IDX, ".tm"}),
                          .HEXDIR(HEXDIR)) tm (
                .clk(clk), .rst(rst),
                .in_valid(s_valid[2*i]), .in_ready(s_ready[2*i]), .in_data(s_data[16*i +: 8]),
                .in_last(s_last[2*i]),
                .out_valid(s_valid[2*i+1]), .out_ready(s_ready[2*i+1]),
                .out_data(s_data[16*i+8 +: 8]), .out_last(s_last[2*i+1]), .err(err[2*i+1]));
            channel_mlp #(.T(T), .C(C), .H(H), .LANES(LANES), .ACT(ACT), .M(M), .LPS(LPS),
                          .NAME({"blocks.", IDX, ".mlp"}), .HEXDIR(HEXDIR)) mlp (
                .clk(clk), .rst(rst),
                .in_valid(s_valid[2*i+1]), .in_ready(s_ready[2*i+1]),
                .in_data(s_data[16*i+8 +: 8]), .in_last(s_last[2*i+1]),
                .out_valid(s_valid[2*i+2]), .out_ready(s_ready[2*i+2]),
                .out_data(s_data[16*i+16 +: 8]), .out_last(s_last[2*i+2]), .err(err[2*i+2]));
        end
    endgenerate

    wire              p_valid, p_ready, p_last;
    wire signed [7:0] p_data;
    mean_pool #(.T(T), .C(C)) pool (
        .clk(clk), .rst(rst),
        .in_valid(s_valid[2*DEPTH]), .in_ready(s_ready[2*DEPTH]), .in_data(s_data[16*DEPTH +: 8]),
        .in_last(s_last[2*DEPTH]),
        .out_valid(p_valid), .out_ready(p_ready), .out_data(p_data), .out_last(p_last),
        .err(err[2*DEPTH+1]));

    row_linear #(.I(C), .O(K), .FOLD(C / HEADMUL), .ROWS(1), .ACT(0), .M(M), .LPS(LPS),
                 .NAME("head"), .HEXDIR(HEXDIR)) head (
        .clk(clk), .rst(rst),
        .in_valid(p_valid), .in_ready(p_ready), .in_data(p_data), .in_last(p_last),
        .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data), .out_last(out_last),
        .err(err[2*DEPTH+2]));
endmodule

`default_nettype wire
