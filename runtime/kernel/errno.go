package kernel

// Linux errno values (include/uapi/asm-generic/errno-base.h, errno.h),
// returned negated in RAX.
const (
	ePERM           = 1
	eNOENT          = 2
	eSRCH           = 3
	eINTR           = 4
	eBADF           = 9
	eAGAIN          = 11
	eNOMEM          = 12
	eFAULT          = 14
	eEXIST          = 17
	eNODEV          = 19
	eINVAL          = 22
	eMFILE          = 24
	eNOTTY          = 25
	eNOSPC          = 28
	eNOSYS          = 38
	eNOTSOCK        = 88
	ePROTONOSUPPORT = 93
	eOPNOTSUPP      = 95
	eAFNOSUPPORT    = 97
	eNOTCONN        = 107
	eINPROGRESS     = 115
	eTIMEDOUT       = 110
)
