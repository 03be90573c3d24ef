"""A GB/T 28181-style device on pjsua2 (a SIP stack nobody here wrote), run as a subprocess by the tests.

usage: python -m tests.e2e.pjsua2_device REGISTRAR_HOST:PORT DEVICE_ID PASSWORD [--transport udp|tcp]
Registers with digest, sends one Keepalive MESSAGE (Application/MANSCDP+xml), unregisters, and prints one
JSON line with what happened: registration status codes, the MESSAGE's final status, and the unregistration.
Every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pjsua2 as pj

KEEPALIVE = (
    '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>7</SN>\r\n'
    "<DeviceID>{id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
)


class Device(pj.Account):
    def __init__(self) -> None:
        super().__init__()
        self.reg_codes: list[int] = []
        self.reg_active: list[bool] = []
        self.im_codes: list[int] = []

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        self.reg_codes.append(prm.code)
        self.reg_active.append(self.getInfo().regIsActive)

    def onInstantMessageStatus(self, prm: pj.OnInstantMessageStatusParam) -> None:
        self.im_codes.append(prm.code)


def wait(ep: pj.Endpoint, cond, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ep.libHandleEvents(20)
        if cond():
            return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("registrar")
    ap.add_argument("device_id")
    ap.add_argument("password")
    ap.add_argument("--transport", default="udp", choices=["udp", "tcp"])
    args = ap.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = "pjsua2 GB28181 test device"
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = "127.0.0.1"
    tcfg.port = 0
    ttype = pj.PJSIP_TRANSPORT_TCP if args.transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
    ep.transportCreate(ttype, tcfg)
    ep.libStart()

    domain = "3402000000"
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{args.device_id}@{domain}"
    suffix = ";transport=tcp" if args.transport == "tcp" else ""
    acfg.regConfig.registrarUri = f"sip:{args.registrar}{suffix}"
    acfg.regConfig.timeoutSec = 3600
    acfg.regConfig.retryIntervalSec = 0
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", args.device_id, 0, args.password))
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acfg.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
    acfg.natConfig.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
    acc = Device()
    acc.create(acfg)
    result: dict[str, object] = {}
    result["registered"] = wait(ep, lambda: bool(acc.reg_codes), 10) and acc.reg_codes[-1] == 200
    result["register_codes"] = list(acc.reg_codes)

    if result["registered"]:
        bcfg = pj.BuddyConfig()
        bcfg.uri = f"sip:34020000002000000001@{args.registrar}{suffix}"
        buddy = pj.Buddy()
        buddy.create(acc, bcfg)
        prm = pj.SendInstantMessageParam()
        prm.contentType = "Application/MANSCDP+xml"
        prm.content = KEEPALIVE.format(id=args.device_id)
        buddy.sendInstantMessage(prm)
        wait(ep, lambda: bool(acc.im_codes), 10)
        result["message_codes"] = list(acc.im_codes)
        before = len(acc.reg_codes)
        acc.setRegistration(False)
        wait(ep, lambda: len(acc.reg_codes) > before, 10)
        result["unregister_codes"] = acc.reg_codes[before:]
        result["active_after_unregister"] = acc.reg_active[-1] if acc.reg_active else None
    print(json.dumps(result), flush=True)
    acc.shutdown()
    ep.libDestroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
