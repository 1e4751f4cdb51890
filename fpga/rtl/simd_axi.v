// simd_axi: the fixed-SIMD INT8 ResMLP engine (simd_top) with the
// interfaces of a system on chip:
//   AXI4-Lite slave   s_axil_*   registers (axil_regs: map in that file and in
//                                fpga/README.md): START, STATUS, CFG, the stream
//                                addresses and lengths, CYCLES, INFO
//   AXI4 read master  m_axi_*    weights and parameters (axi_rd_master): INCR
//                                bursts of up to BL beats of PB bytes, never across
//                                a 4 KB boundary, RRESP checked
//   AXI4-Stream in    s_axis_img_*   the image: T x ceil(P / TW) words of TW bytes
//                                (token rows, patch values zero padded), TLAST on the
//                                last word
//   AXI4-Stream out   m_axis_out_*   the K logits (signed bytes), TLAST on the last
//   irq               STATUS.DONE
// Software writes CFG, WBASE, WLEN, PBASE, PLEN (byte addresses and lengths,
// multiples of PB), then START, streams the image in, takes the logits,
// and reads STATUS (DONE, errors) and CYCLES. Both streams pass through a
// registered slice (axis_skid); every output port is driven by a register
// or by logic of registers only: no combinational path from an input port
// to an output port.
//
// STATUS error bits (sticky until reset): bit 2 ERR_CFG (a bad CFG, a
// stream address or length not a multiple of PB or beyond the engine's
// address range: the image is not started; or an engine FIFO overflow),
// bit 3 ERR_RESP (a read beat came back with RRESP other than OKAY), bit 4
// ERR_RLAST (RLAST disagreed with ARLEN), bit 5 ERR_IMG (TLAST of the image
// stream not on the image's last word).
//
// INFO = {4'd1 (version), 3'd0, LERP, BL - 1 (8 bits), PB (8 bits), TW (8 bits)}.
//
// Parameters: those of simd_top (TW, PB, T, C, HMAX, P, K, DEPTH, LERP, M, LPS,
// MFAW, BAW, BL: see simd_top.v), and
//   AXW    AXI byte-address width, >= BAW + log2(PB)
//
// Ports
//   clk         clock of every interface
//   rst         synchronous active-high reset
//   s_axil_*    AXI4-Lite slave: awaddr/awvalid/awready, wdata/wstrb/wvalid/wready,
//               bresp/bvalid/bready, araddr/arvalid/arready, rdata/rresp/rvalid/rready
//               (6-bit addresses, 32-bit data)
//   m_axi_*     AXI4 read master: araddr/arlen/arsize/arburst/arvalid/arready,
//               rdata/rresp/rlast/rvalid/rready (PB * 8-bit data)
//   s_axis_img_tdata/tvalid/tready/tlast   image stream (TW * 8-bit words)
//   m_axis_out_tdata/tvalid/tready/tlast   logits stream (8-bit)
//   irq         an image is done (STATUS.DONE)

`default_nettype none

module simd_axi #(
    parameter integer TW    = 16,
    parameter integer PB    = 16,
    parameter integer T     = 64,
    parameter integer C     = 96,
    parameter integer HMAX  = 192,
    parameter integer P     = 16,
    parameter integer K     = 10,
    parameter integer DEPTH = 4,
    parameter integer LERP  = 1,
    parameter integer M     = 6,
    parameter integer LPS   = 2,
    parameter integer MFAW  = 6,
    parameter integer BAW   = 20,
    parameter integer BL    = 16,
    parameter integer AXW   = 32
) (
    input  wire              clk,
    input  wire              rst,
    input  wire [5:0]        s_axil_awaddr,
    input  wire              s_axil_awvalid,
    output wire              s_axil_awready,
    input  wire [31:0]       s_axil_wdata,
    input  wire [3:0]        s_axil_wstrb,
    input  wire              s_axil_wvalid,
    output wire              s_axil_wready,
    output wire [1:0]        s_axil_bresp,
    output wire              s_axil_bvalid,
    input  wire              s_axil_bready,
    input  wire [5:0]        s_axil_araddr,
    input  wire              s_axil_arvalid,
    output wire              s_axil_arready,
    output wire [31:0]       s_axil_rdata,
    output wire [1:0]        s_axil_rresp,
    output wire              s_axil_rvalid,
    input  wire              s_axil_rready,
    output wire [AXW-1:0]    m_axi_araddr,
    output wire [7:0]        m_axi_arlen,
    output wire [2:0]        m_axi_arsize,
    output wire [1:0]        m_axi_arburst,
    output wire              m_axi_arvalid,
    input  wire              m_axi_arready,
    input  wire [PB*8-1:0]   m_axi_rdata,
    input  wire [1:0]        m_axi_rresp,
    input  wire              m_axi_rlast,
    input  wire              m_axi_rvalid,
    output wire              m_axi_rready,
    input  wire [TW*8-1:0]   s_axis_img_tdata,
    input  wire              s_axis_img_tvalid,
    output wire              s_axis_img_tready,
    input  wire              s_axis_img_tlast,
    output wire [7:0]        m_axis_out_tdata,
    output wire              m_axis_out_tvalid,
    input  wire              m_axis_out_tready,
    output wire              m_axis_out_tlast,
    output wire              irq
);
    localparam integer PBW = $clog2(PB);
    localparam integer BLM1 = BL - 1;
    localparam [7:0]   BLM = BLM1[7:0];
    localparam [7:0]   PB8 = PB[7:0];
    localparam [7:0]   TW8 = TW[7:0];
    localparam [0:0]   LERP1 = (LERP != 0);
    localparam [31:0]  INFO = {4'd1, 3'd0, LERP1, BLM, PB8, TW8};

`ifndef SYNTHESIS
    initial begin
        if (AXW < BAW + PBW || AXW > 32) begin
            $display("simd_axi: need BAW + log2(PB) <= AXW <= 32");
            $finish;
        end
    end
`endif

    // ---------------------------------------------------------------- registers
    wire        start_w, busy, e_err, e_img_err, r_err_resp, r_err_last, cfg_act;
    wire [15:0] cfg_h;
    wire [31:0] wbase, wlen, pbase, plen;
    reg         align_err;
    axil_regs #(.ERRW(4), .INFO(INFO)) regs (
        .clk(clk), .rst(rst),
        .s_axil_awaddr(s_axil_awaddr), .s_axil_awvalid(s_axil_awvalid), .s_axil_awready(s_axil_awready),
        .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb), .s_axil_wvalid(s_axil_wvalid),
        .s_axil_wready(s_axil_wready), .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid),
        .s_axil_bready(s_axil_bready), .s_axil_araddr(s_axil_araddr), .s_axil_arvalid(s_axil_arvalid),
        .s_axil_arready(s_axil_arready), .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp),
        .s_axil_rvalid(s_axil_rvalid), .s_axil_rready(s_axil_rready),
        .start(start_w), .cfg_h(cfg_h), .cfg_act(cfg_act), .wbase(wbase), .wlen(wlen),
        .pbase(pbase), .plen(plen), .busy(busy),
        .err({e_img_err, r_err_last, r_err_resp, e_err | align_err}), .irq(irq));

    // byte addresses and lengths to beats: multiples of PB within the engine's range
    function bad_addr;
        input [31:0] a;
        begin
            bad_addr = (a[PBW-1:0] != {PBW{1'b0}})
                       || (BAW + PBW < 32 && (a >> (BAW + PBW)) != 32'd0);
        end
    endfunction
    wire cfg_bad = bad_addr(wbase) || bad_addr(wlen) || bad_addr(pbase) || bad_addr(plen);
    always @(posedge clk) begin
        if (rst) align_err <= 1'b0;
        else if (start_w && cfg_bad) align_err <= 1'b1;
    end

    // ---------------------------------------------------------------- image stream in
    wire          img_valid, img_ready, img_last;
    wire [TW*8-1:0] img_data;
    axis_skid #(.W(TW * 8 + 1)) img_slice (
        .clk(clk), .rst(rst),
        .in_valid(s_axis_img_tvalid), .in_ready(s_axis_img_tready),
        .in_data({s_axis_img_tlast, s_axis_img_tdata}),
        .out_valid(img_valid), .out_ready(img_ready), .out_data({img_last, img_data}));

    // ---------------------------------------------------------------- the engine
    wire            mem_req, mem_tag, mem_gnt, mem_rvalid, mem_rtag, unused_rlast;
    wire [BAW-1:0]  mem_addr;
    wire [7:0]      mem_len;
    wire [PB*8-1:0] mem_rdata;
    wire            o_valid, o_ready, o_last;
    wire [7:0]      o_data;
    simd_top #(.TW(TW), .PB(PB), .T(T), .C(C), .HMAX(HMAX), .P(P), .K(K), .DEPTH(DEPTH),
               .LERP(LERP), .M(M), .LPS(LPS), .MFAW(MFAW), .BAW(BAW), .BL(BL)) engine (
        .clk(clk), .rst(rst), .start(start_w && !cfg_bad), .cfg_h(cfg_h), .cfg_act(cfg_act),
        .cfg_wbase(wbase[PBW +: BAW]), .cfg_wbeats(wlen[PBW +: BAW]),
        .cfg_pbase(pbase[PBW +: BAW]), .cfg_pbeats(plen[PBW +: BAW]),
        .busy(busy),
        .img_valid(img_valid), .img_ready(img_ready), .img_data(img_data), .img_last(img_last),
        .mem_req(mem_req), .mem_addr(mem_addr), .mem_len(mem_len), .mem_tag(mem_tag),
        .mem_gnt(mem_gnt), .mem_rvalid(mem_rvalid), .mem_rdata(mem_rdata), .mem_rtag(mem_rtag),
        .out_valid(o_valid), .out_ready(o_ready), .out_data(o_data), .out_last(o_last),
        .err(e_err), .img_err(e_img_err));

    // ---------------------------------------------------------------- AXI4 read master
    axi_rd_master #(.PB(PB), .BAW(BAW), .AXW(AXW), .TAGW(1), .TFAW(MFAW + 1)) rd (
        .clk(clk), .rst(rst),
        .req(mem_req), .addr(mem_addr), .len(mem_len), .tag(mem_tag), .gnt(mem_gnt),
        .out_valid(mem_rvalid), .out_data(mem_rdata), .out_tag(mem_rtag), .out_last(unused_rlast),
        .err_resp(r_err_resp), .err_last(r_err_last),
        .m_axi_araddr(m_axi_araddr), .m_axi_arlen(m_axi_arlen), .m_axi_arsize(m_axi_arsize),
        .m_axi_arburst(m_axi_arburst), .m_axi_arvalid(m_axi_arvalid), .m_axi_arready(m_axi_arready),
        .m_axi_rdata(m_axi_rdata), .m_axi_rresp(m_axi_rresp), .m_axi_rlast(m_axi_rlast),
        .m_axi_rvalid(m_axi_rvalid), .m_axi_rready(m_axi_rready));

    // ---------------------------------------------------------------- logits stream out
    axis_skid #(.W(9)) out_slice (
        .clk(clk), .rst(rst),
        .in_valid(o_valid), .in_ready(o_ready), .in_data({o_last, o_data}),
        .out_valid(m_axis_out_tvalid), .out_ready(m_axis_out_tready),
        .out_data({m_axis_out_tlast, m_axis_out_tdata}));

    wire unused = &{1'b0, unused_rlast, wbase, wlen, pbase, plen};
endmodule

`default_nettype wire
