module llmd.dev/llmd

go 1.21
