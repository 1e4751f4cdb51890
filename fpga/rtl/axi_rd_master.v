// axi_rd_master: the AXI4 read master of the fixed-SIMD engine. It turns
// burst requests (a first beat address, a length and a tag naming the
// requester) into AR transfers and hands the R beats back, each with the
// tag of its burst.
//
// AR: a request is taken (gnt) into the AR register when that register is
// empty or is being emptied this clock (ARVALID && ARREADY), and when the
// tag FIFO has room; ARVALID, ARADDR and ARLEN come straight from registers
// and stay stable until ARREADY. Every burst is INCR (ARBURST 01) of
// full-width beats (ARSIZE = log2 PB); the requester keeps bursts within
// 4 KB pages and at most 256 beats (mem_reader). One ID: the memory answers
// the bursts in order.
//
// R: RREADY is a register, high out of reset: the requesters reserved room
// for every beat of a burst before asking for it, so no beat ever needs to
// wait. Each beat is registered (out_valid one clock after the R
// handshake) with its tag, taken from the tag FIFO, which pops at the
// burst's last beat. Checked on every beat: RRESP must be OKAY (a SLVERR or
// DECERR sets err_resp) and RLAST must come exactly with the last beat of
// the burst's ARLEN + 1 (otherwise err_last). Both are sticky until reset;
// the beats are delivered in any case, so the engine runs to its end and
// the error is read from the status register.
//
// No combinational path from an input port to an output port.
//
// Parameters
//   PB     bytes per beat (data bus PB * 8 bits), a power of two
//   BAW    beat-address width of the requests
//   AXW    AXI byte-address width, >= BAW + log2(PB)
//   TAGW   tag width, >= 1
//   TFAW   log2 of the tag FIFO depth (bursts in flight), >= 1
//
// Ports
//   clk, rst                  clock; synchronous active-high reset
//   req, addr, len, tag, gnt  burst requests: first beat (beat address), beats - 1,
//                             the requester's tag; gnt: taken this clock
//   out_valid, out_data, out_tag, out_last   the R beats, one clock after RVALID && RREADY
//   err_resp                  sticky: a beat came with RRESP other than OKAY
//   err_last                  sticky: RLAST disagreed with the burst length
//   m_axi_araddr, m_axi_arlen, m_axi_arsize, m_axi_arburst, m_axi_arvalid, m_axi_arready
//                             AXI4 read address channel
//   m_axi_rdata, m_axi_rresp, m_axi_rlast, m_axi_rvalid, m_axi_rready
//                             AXI4 read data channel

`default_nettype none

module axi_rd_master #(
    parameter integer PB   = 16,
    parameter integer BAW  = 20,
    parameter integer AXW  = 32,
    parameter integer TAGW = 1,
    parameter integer TFAW = 4
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             req,
    input  wire [BAW-1:0]   addr,
    input  wire [7:0]       len,
    input  wire [TAGW-1:0]  tag,
    output wire             gnt,
    output reg              out_valid,
    output reg  [PB*8-1:0]  out_data,
    output wire [TAGW-1:0]  out_tag,
    output reg              out_last,
    output reg              err_resp,
    output reg              err_last,
    output wire [AXW-1:0]   m_axi_araddr,
    output wire [7:0]       m_axi_arlen,
    output wire [2:0]       m_axi_arsize,
    output wire [1:0]       m_axi_arburst,
    output wire             m_axi_arvalid,
    input  wire             m_axi_arready,
    input  wire [PB*8-1:0]  m_axi_rdata,
    input  wire [1:0]       m_axi_rresp,
    input  wire             m_axi_rlast,
    input  wire             m_axi_rvalid,
    output wire             m_axi_rready
);
    localparam integer PBW = $clog2(PB);

`ifndef SYNTHESIS
    initial begin
        if ((1 << PBW) != PB || PB > 128 || AXW < BAW + PBW || TAGW < 1 || TFAW < 1) begin
            $display("axi_rd_master: need PB a power of two <= 128, AXW >= BAW + log2 PB");
            $finish;
        end
    end
`endif

    // ---------------------------------------------------------------- AR
    reg           ar_valid;
    reg [BAW-1:0] ar_beat;
    reg [7:0]     ar_len;
    wire          t_in_ready;
    assign gnt = req && (!ar_valid || m_axi_arready) && t_in_ready;
    always @(posedge clk) begin
        if (rst) begin
            ar_valid <= 1'b0;
        end else if (gnt) begin
            ar_valid <= 1'b1;
            ar_beat  <= addr;
            ar_len   <= len;
        end else if (m_axi_arready) begin
            ar_valid <= 1'b0;
        end
    end
    assign m_axi_arvalid = ar_valid;
    assign m_axi_araddr  = {{(AXW-BAW-PBW){1'b0}}, ar_beat, {PBW{1'b0}}};
    assign m_axi_arlen   = ar_len;
    assign m_axi_arsize  = PBW[2:0];
    assign m_axi_arburst = 2'b01;                         // INCR

    // ---------------------------------------------------------------- R
    // the tag and length of every granted burst, oldest first
    wire            t_valid;
    wire [TAGW+7:0] t_data;
    reg             rready;
    wire            beat = m_axi_rvalid && rready;
    reg  [7:0]      nb;                                   // beats of the oldest burst received
    wire            last_expected = (nb == t_data[7:0]);
    stream_fifo #(.W(TAGW + 8), .AW(TFAW)) tags (
        .clk(clk), .rst(rst), .in_valid(gnt), .in_ready(t_in_ready), .in_data({tag, len}),
        .out_valid(t_valid), .out_ready(beat && last_expected), .out_data(t_data));
    reg [TAGW-1:0] rtag;
    always @(posedge clk) begin
        rready    <= !rst;
        out_valid <= !rst && beat;
        if (beat) begin
            out_data <= m_axi_rdata;
            out_last <= last_expected;
            rtag     <= t_data[TAGW+7 -: TAGW];
        end
        if (rst) begin
            nb       <= 8'd0;
            err_resp <= 1'b0;
            err_last <= 1'b0;
        end else if (beat) begin
            nb <= last_expected ? 8'd0 : nb + 8'd1;
            if (m_axi_rresp != 2'b00) err_resp <= 1'b1;
            if (m_axi_rlast != last_expected || !t_valid) err_last <= 1'b1;
        end
    end
    assign out_tag      = rtag;
    assign m_axi_rready = rready;
`ifndef SYNTHESIS
    always @(posedge clk)
        if (!rst && beat && (m_axi_rlast != last_expected || !t_valid) && !err_last)
            $display("ERROR %m: RLAST %0d on beat %0d of a burst of %0d", m_axi_rlast, nb,
                     t_data[7:0] + 1);
`endif
endmodule

`default_nettype wire
