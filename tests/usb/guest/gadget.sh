#!/bin/sh
# The emulated camera's USB side, inside the guest: dummy_hcd (a virtual UDC wired to a virtual
# host bus) + a configfs gadget with the camera's VID/PID/serial, one configuration holding a
# read-only removable mass-storage LUN (no medium until SetMSDC) and a FunctionFS vendor
# interface served by /bin/zfy-gadget.
#
#   gadget.sh setup VID PID SERIAL    once: configfs gadget + FunctionFS mount
#   gadget.sh start ZFY-GADGET-ARGS   (re)start the firmware (cable out first); waits for READY
#   gadget.sh plug | unplug           bind / unbind the UDC: cable in / out
#   gadget.sh stop                    cable out, firmware stopped
#   gadget.sh disk                    the host-side block device of the card (sdX), if any
G=/sys/kernel/config/usb_gadget/cam
LUN=$G/functions/mass_storage.0/lun.0
FFS=/dev/ffs-zfy
set -e
case "$1" in
setup)
  modprobe dummy_hcd
  modprobe libcomposite; modprobe usb_f_mass_storage; modprobe usb_f_fs
  mkdir -p $G/strings/0x409 $G/configs/c.1/strings/0x409
  echo "$2" > $G/idVendor; echo "$3" > $G/idProduct
  echo 0x0200 > $G/bcdUSB; echo 0x0100 > $G/bcdDevice
  echo "$4" > $G/strings/0x409/serialnumber
  echo "ZFY" > $G/strings/0x409/manufacturer
  echo "ZFY body camera (emulated)" > $G/strings/0x409/product
  echo "camera" > $G/configs/c.1/strings/0x409/configuration
  echo 500 > $G/configs/c.1/MaxPower
  mkdir $G/functions/mass_storage.0
  echo 1 > $LUN/removable          # a card reader: medium comes and goes
  echo 1 > $LUN/ro                 # set before any medium: the host can never write the card
  ln -s $G/functions/mass_storage.0 $G/configs/c.1/
  mkdir $G/functions/ffs.zfy
  ln -s $G/functions/ffs.zfy $G/configs/c.1/
  mkdir -p $FFS; mount -t functionfs zfy $FFS
  echo "GADGET_SETUP $(cat $G/idVendor):$(cat $G/idProduct) udc=$(ls /sys/class/udc)" ;;
start)
  shift
  "$0" stop
  # the USB serial string follows the camera's (settable only while the cable is out)
  prev=""; for a in "$@"; do [ "$prev" = --serial ] && echo "$a" > $G/strings/0x409/serialnumber; prev=$a; done
  : > /run/gadget.out
  # the firmware's log goes to the log console (hvc1, time-stamped by the harness) and a file
  sh -c 'echo $$ > /run/zfy-gadget.pid; exec /bin/zfy-gadget "$@" 2>&1' zfy-gadget \
     --ffs $FFS --lun $LUN/file "$@" </dev/null | tee -a /run/gadget.log /run/gadget.out >/dev/hvc1 &
  i=0
  while ! grep -q ZFY_GADGET_READY /run/gadget.out 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 500 ] || { echo "GADGET_START_FAILED"; cat /run/gadget.out; exit 1; }
    usleep 10000
  done
  echo "GADGET_STARTED" ;;
plug)
  ls /sys/class/udc > $G/UDC; echo GADGET_PLUGGED ;;
unplug)
  [ -z "$(cat $G/UDC)" ] || echo "" > $G/UDC; echo GADGET_UNPLUGGED ;;
stop)
  [ -z "$(cat $G/UDC)" ] || echo "" > $G/UDC
  if [ -f /run/zfy-gadget.pid ]; then
    pid=$(cat /run/zfy-gadget.pid); rm -f /run/zfy-gadget.pid
    kill "$pid" 2>/dev/null || true
    i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do usleep 10000; i=$((i + 1)); done
  fi ;;
disk)
  for b in /sys/block/sd*; do
    [ -e "$b" ] && readlink -f "$b" | grep -q dummy_hcd && echo "${b##*/}"
  done; true ;;
*) echo "usage: gadget.sh setup|start|plug|unplug|stop|disk" >&2; exit 2 ;;
esac
