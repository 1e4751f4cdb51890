// mean_pool: the rounded mean over the T tokens of an image
// (docs/METHOD.md section 10):
//
//   p[c] = rshift(sum over t of x[t, c], log2 T)     (round half up)
//
// Takes token rows of C channels at one element per clock into C
// accumulators; after the last element of an image the C means are copied
// to an output register and streamed out (C elements, channel order) while
// the accumulators already take the next image. The result of a rounded
// mean of int8 values is an int8 value, so no clip is needed.
//
// End of image: in_last marks the last element of an image; the stage
// counts elements itself and raises err (sticky) when in_last disagrees;
// out_last marks the last mean (channel C - 1) of each image.
//
// Parameters
//   T   tokens per image, a power of two >= 2
//   C   channels, >= 2
//
// Ports (valid/ready streams of signed 8-bit codes)
//   clk, rst   clock and synchronous active-high reset
//   in_valid, in_ready, in_data, in_last       input elements, token rows in order
//   out_valid, out_ready, out_data, out_last   the C means of each image
//   err        sticky: in_last disagreed with the element count

`default_nettype none

module mean_pool #(
    parameter integer T = 64,
    parameter integer C = 96
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
    output reg               err
);
    localparam integer TW = $clog2(T);
    localparam integer CW = $clog2(C);
    localparam integer SW = 8 + TW;                // width of a sum of T codes

`ifndef SYNTHESIS
    initial begin
        if ((1 << TW) != T || T < 2) begin
            $display("mean_pool: T must be a power of two >= 2, got %0d", T);
            $finish;
        end
    end
`endif

    reg signed [SW-1:0] acc [0:C-1];
    reg [CW-1:0]        pc;
    reg [TW-1:0]        pt;
    reg [C*8-1:0]       pvec;      // the means being streamed out
    reg                 busy;      // pvec holds means not yet all sent
    reg [CW-1:0]        oc;        // next channel to send
    reg                 snap;      // the last element was added one clock ago

    wire last_pos = (pc == C[CW-1:0] - 1'b1) && (pt == T[TW-1:0] - 1'b1);
    assign in_ready = !(last_pos && (busy || snap));
    wire take = in_valid && in_ready;

    always @(posedge clk) begin
        if (take) acc[pc] <= ((pt == {TW{1'b0}}) ? {SW{1'b0}} : acc[pc]) + {{TW{in_data[7]}}, in_data};
    end

    // rshift(acc[c], TW) of every channel (read in the clock after the last
    // element, when acc holds the complete sums; acc[0] may already be
    // overwritten by the next image at that same edge, which nonblocking
    // assignment makes harmless).
    reg [C*8-1:0]       means;
    reg signed [SW:0]   rounded;
    integer c;
    always @* begin
        for (c = 0; c < C; c = c + 1) begin
            rounded = ({acc[c][SW-1], acc[c]} + ({{SW{1'b0}}, 1'b1} << (TW - 1))) >>> TW;
            means[c*8 +: 8] = rounded[7:0];
        end
    end

    wire unused_ok = &{1'b0, rounded[SW:8]};   // a rounded mean of codes fits in 8 bits

    wire pop = busy && out_ready;
    always @(posedge clk) begin
        if (rst) begin
            pc   <= {CW{1'b0}};
            pt   <= {TW{1'b0}};
            busy <= 1'b0;
            oc   <= {CW{1'b0}};
            snap <= 1'b0;
            err  <= 1'b0;
        end else begin
            if (take && (in_last != last_pos)) err <= 1'b1;
            if (take) begin
                pc <= (pc == C[CW-1:0] - 1'b1) ? {CW{1'b0}} : pc + 1'b1;
                if (pc == C[CW-1:0] - 1'b1) pt <= pt + 1'b1;   // T = 2^TW wraps by itself
            end
            snap <= take && last_pos;
            if (snap) begin
                pvec <= means;
                busy <= 1'b1;
                oc   <= {CW{1'b0}};
            end else if (pop) begin
                oc <= oc + 1'b1;
                if (oc == C[CW-1:0] - 1'b1) busy <= 1'b0;
            end
        end
    end
    assign out_valid = busy;
    assign out_data  = pvec[oc*8 +: 8];
    assign out_last  = (oc == C[CW-1:0] - 1'b1);
`ifndef SYNTHESIS
    always @(posedge clk)
        if (!rst && take && (in_last != last_pos) && !err)
            $display("ERROR %m: end-of-image marker %0d at token %0d channel %0d of %0d x %0d",
                     in_last, pt, pc, T, C);
`endif
endmodule

`default_nettype wire
